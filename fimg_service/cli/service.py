"""`fimg serve|db|keys|bank|match|jobs|audit`: the service and its data, from the command line.

These commands use the same data directory and database as the service (FIMG_DATA_DIR, FIMG_DATABASE_URL) and
act as the local administrator through the same use cases as the API; every change they make is written to the
audit log as `local-cli`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fimg_service.config import Settings
from fimg_service.errors import InvalidInput
from fimg_service.usecases import LOCAL_ADMIN, ROLES, Application, job_request
from fimg_service.usecases.banks import EXPORT_FORMATS, IMPORT_FORMATS


def open_app() -> Application:
    """The application on this machine's database, its schema brought to head (or checked, see FIMG_AUTO_UPGRADE)."""
    app = Application(Settings.from_env())
    app.prepare_schema()
    return app


def read_files(paths: list[Path]) -> tuple[list[tuple[str, bytes]], int]:
    """(name, bytes) of every readable file; an unreadable one is a line on stderr and counted."""
    files, unreadable = [], 0
    for path in paths:
        try:
            files.append((str(path), path.read_bytes()))
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            unreadable += 1
    return files, unreadable


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    db = subparsers.add_parser("db", help="the database schema").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="bring the database to the current schema (migrations)").set_defaults(
        func=cmd_db_upgrade)

    keys = subparsers.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_cmd", required=True)
    create = keys.add_parser("create", help="create a key; it is printed once and stored hashed")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True)
    create.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="list keys (never the keys themselves)").set_defaults(func=cmd_keys_list)

    bank = subparsers.add_parser("bank", help="manage hash banks").add_subparsers(dest="bank_cmd", required=True)
    bank_create = bank.add_parser("create", help="create an empty bank")
    bank_create.add_argument("name")
    bank_create.add_argument("--description")
    bank_create.add_argument("--threshold", type=int)
    bank_create.set_defaults(func=cmd_bank_create)
    bank.add_parser("list", help="list banks with record counts").set_defaults(func=cmd_bank_list)
    bank_import = bank.add_parser("import", help="import records from a CSV or JSONL file")
    bank_import.add_argument("name")
    bank_import.add_argument("file", type=Path)
    bank_import.add_argument("--format", choices=IMPORT_FORMATS,
                             help="default: by the file name (.csv, .jsonl, .ndjson)")
    bank_import.add_argument("--signal-type", help="pytx_local: the type of bare hashes (e.g. pdq)")
    bank_import.set_defaults(func=cmd_bank_import)
    bank_add = bank.add_parser("add", help="enrol images: their hashes are stored, their pixels are not")
    bank_add.add_argument("name")
    bank_add.add_argument("paths", nargs="+", type=Path)
    bank_add.add_argument("--victim-id")
    bank_add.add_argument("--record-id", help="record id for a single image (default: the file name)")
    bank_add.add_argument("--plain", action="store_true",
                          help="store only the plain hashes, not the robust variants (crops, turns, borders)")
    bank_add.set_defaults(func=cmd_bank_add)
    bank_export = bank.add_parser("export", help="write a bank's records to stdout")
    bank_export.add_argument("name")
    bank_export.add_argument("--format", choices=EXPORT_FORMATS, default="csv",
                             help="csv and jsonl keep everything; the hash-list formats say what they drop")
    bank_export.set_defaults(func=cmd_bank_export)

    match = subparsers.add_parser("match", help="match images against banks through the worker pool")
    match.add_argument("paths", nargs="+", type=Path)
    match.add_argument("--bank", action="append", required=True, help="bank name (repeatable)")
    match.add_argument("--threshold", type=int)
    match.add_argument("--no-dihedral", action="store_true")
    match.add_argument("--json", action="store_true", help="one report item per line")
    match.add_argument("--out", type=Path, help="write the report here instead of stdout")
    match.set_defaults(func=cmd_match)

    jobs = subparsers.add_parser("jobs", help="list, show or cancel jobs").add_subparsers(dest="jobs_cmd", required=True)
    jobs_list = jobs.add_parser("list")
    jobs_list.add_argument("--status")
    jobs_list.set_defaults(func=cmd_jobs_list)
    jobs_show = jobs.add_parser("show")
    jobs_show.add_argument("job_id")
    jobs_show.add_argument("--items", action="store_true", help="include every item's result")
    jobs_show.set_defaults(func=cmd_jobs_show)
    jobs_cancel = jobs.add_parser("cancel", help="cancel a queued or running job (any owner's: the CLI is admin)")
    jobs_cancel.add_argument("job_id")
    jobs_cancel.set_defaults(func=cmd_jobs_cancel)

    audit = subparsers.add_parser("audit", help="the audit log").add_subparsers(dest="audit_cmd", required=True)
    audit.add_parser("verify", help="check the tamper-evident chain").set_defaults(func=cmd_audit_verify)


def cmd_serve(args) -> int:
    import uvicorn

    app = open_app()
    key_file = app.settings.data_dir / "initial-admin-key"
    if app.keys.bootstrap_admin(LOCAL_ADMIN, key_file):
        print(f"first start: an admin API key was written to {key_file} (readable by you only)", file=sys.stderr)
    app.close()
    uvicorn.run("api:create_app", factory=True, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_db_upgrade(args) -> int:
    print(f"database schema: {Application(Settings.from_env()).upgrade_schema()}")
    return 0


def cmd_keys_create(args) -> int:
    key, plaintext = open_app().keys.create(LOCAL_ADMIN, args.name, args.role)
    print(plaintext)
    print(f"key {key.id} ({key.role}) created; it is shown only now", file=sys.stderr)
    return 0


def cmd_keys_list(args) -> int:
    for key in open_app().keys.list(LOCAL_ADMIN):
        print(json.dumps({"id": key.id, "name": key.name, "role": key.role, "created_at": key.created_at.isoformat(),
                          "revoked": key.revoked}))
    return 0


def cmd_bank_create(args) -> int:
    open_app().banks.create(LOCAL_ADMIN, args.name, args.description, args.threshold)
    print(f"bank {args.name} created", file=sys.stderr)
    return 0


def cmd_bank_list(args) -> int:
    for bank in open_app().banks.list(LOCAL_ADMIN):
        print(json.dumps({"name": bank.name, "description": bank.description, "threshold": bank.threshold,
                          "records": bank.records, "revision": bank.revision,
                          "created_at": bank.created_at.isoformat()}))
    return 0


def print_rejected(source: str, rejected: list[dict]) -> None:
    """One stderr line per rejected part: `FILE:LINE: message` for bank rows, `NAME: message` for files."""
    for row in rejected:
        where = f"{source}:{row['line']}" if "line" in row else row["name"]
        print(f"{where}: {row['message']}", file=sys.stderr)


def cmd_bank_import(args) -> int:
    from imaging.banks import detect_format

    try:
        file_format = args.format or detect_format(args.file.name, None)
        data = args.file.read_bytes()
    except ValueError as exc:
        raise InvalidInput(str(exc), code="unsupported_format") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror or exc}", code="unreadable") from None
    report = open_app().banks.import_file(LOCAL_ADMIN, args.name, data, file_format, args.signal_type)
    print_rejected(str(args.file), report.rejected)
    summary = {"imported": report.imported, "rejected": len(report.rejected)}
    if report.disabled or report.unsupported:
        summary.update(disabled=report.disabled, unsupported=report.unsupported)
    print(json.dumps(summary))
    return 1 if report.rejected else 0


def cmd_bank_add(args) -> int:
    files, unreadable = read_files(args.paths)
    imported, rejected = open_app().banks.enrol(LOCAL_ADMIN, args.name, [(Path(n).name, d) for n, d in files],
                                                victim_id=args.victim_id, record_id=args.record_id,
                                                robust=not args.plain)
    print_rejected(args.name, rejected)
    print(json.dumps({"imported": imported, "rejected": unreadable + len(rejected)}))
    return 1 if unreadable or rejected else 0


def cmd_bank_export(args) -> int:
    text, warnings = open_app().banks.export(LOCAL_ADMIN, args.name, args.format)
    for warning in warnings:
        print(f"fimg: warning: {warning}", file=sys.stderr)
    sys.stdout.write(text)
    return 0


def cmd_match(args) -> int:
    from tqdm import tqdm

    app = open_app()
    for bank in args.bank:
        app.banks.get(LOCAL_ADMIN, bank)
    try:
        out = args.out.open("w") if args.out else sys.stdout
    except OSError as exc:
        raise InvalidInput(f"cannot write the report to {args.out}: {exc.strerror or exc}", code="unwritable") from None
    files, failed = read_files(args.paths)
    if not files:
        return 2
    uploads, rejected = app.uploads.add(LOCAL_ADMIN, files, require_image=False, expand_archives=False)
    print_rejected("", rejected)
    failed += len(rejected)
    params = {"banks": args.bank, "threshold": args.threshold, "dihedral": not args.no_dihedral}
    job = app.jobs.submit(LOCAL_ADMIN, "match_batch", job_request([u.id for u in uploads]), params)
    app.start(only_jobs=[job.id])
    try:
        with tqdm(total=job.total, unit="img", file=sys.stderr, disable=job.total < 2) as bar:
            finished = app.jobs.wait(LOCAL_ADMIN, job.id, on_progress=lambda j: bar.update(j.done - bar.n))
        _job, items = app.jobs.report(LOCAL_ADMIN, job.id)
    finally:
        app.close()
    try:
        for row in items:
            row = {"path": row.pop("name"), **row}
            if args.json:
                out.write(json.dumps(row) + "\n")
            else:
                found = ", ".join(f"{m['bank']}/{m['record_id']} ({m['kind']} {m['distance']})"
                                  for m in row.get("matches") or [])
                out.write(f"{row['path']}\t{row['status']}\t{found or (row.get('error') or {}).get('message', '')}\n")
    finally:
        if args.out:
            out.close()
    print(f"job {job.id}: {finished.status}, {finished.done}/{finished.total} items, {finished.failed} errors",
          file=sys.stderr)
    return 0 if finished.status == "succeeded" and finished.failed == 0 and not failed else 1


def cmd_jobs_list(args) -> int:
    for job in open_app().jobs.list(LOCAL_ADMIN, status=args.status):
        print(json.dumps({"id": job.id, "type": job.type, "status": job.status, "done": job.done,
                          "total": job.total, "created_at": job.created_at.isoformat()}))
    return 0


def cmd_jobs_show(args) -> int:
    app = open_app()
    if args.items:
        job, items = app.jobs.report(LOCAL_ADMIN, args.job_id)
    else:
        job, items = app.jobs.get(LOCAL_ADMIN, args.job_id), None
    shown = {"id": job.id, "type": job.type, "status": job.status, "error": job.error, "params": job.params,
             "progress": {"done": job.done, "total": job.total, "failed": job.failed}}
    if items is not None:
        shown["items"] = items
    print(json.dumps(shown, indent=2))
    return 0


def cmd_jobs_cancel(args) -> int:
    job = open_app().jobs.cancel(LOCAL_ADMIN, args.job_id)
    print(f"job {job.id}: {job.status}, {job.done}/{job.total} items done", file=sys.stderr)
    return 0


def cmd_audit_verify(args) -> int:
    report = open_app().audit.verify(LOCAL_ADMIN)
    if report.intact:
        print(f"audit log intact: {report.checked} entries")
        return 0
    print(f"audit log TAMPERED ({report.problem}): " + {
        "edited": f"entry {report.first_bad_id} does not match the keyed chain",
        "truncated": f"entry {report.first_bad_id}, the newest one checkpointed, is gone",
        "checkpoint": "the checkpoint file was altered",
    }[report.problem] + f" ({report.checked} entries verified before it)")
    return 1
