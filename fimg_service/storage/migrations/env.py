"""Runs fimg's migrations on the connection that `fimg_service.storage.migrate` passes in."""
from alembic import context

from fimg_service.storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("fimg's migrations run through `fimg db upgrade` (fimg_service.storage.migrate), "
                       "which passes in the connection")

# SQLite cannot alter most of a table in place: batch operations copy it into a new one instead.
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
