"""fimg's Alembic environment; `fimg_service.storage.migrate` runs it, with no alembic.ini.

A change to `fimg_service.storage.schema` goes with a new revision in `versions/`, named by its id, whose
`down_revision` is the current head. To draft one from the models, against a database upgraded to head:

    from alembic import command
    from fimg_service.storage.migrate import alembic_config
    with engine.begin() as connection:
        command.revision(alembic_config(connection), "what changed", rev_id="0002_what_changed", autogenerate=True)

then read and complete the draft by hand. `tests/test_migrations.py` fails while models and migrations differ.
"""
