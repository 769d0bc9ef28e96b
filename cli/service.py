"""`fimg serve|keys|bank|match|jobs|audit`: the service and its data, from the command line.

These commands use the same data directory and database as the service (FIMG_DATA_DIR, FIMG_DATABASE_URL) and
act as the local administrator; every change they make is written to the audit log as `local-cli`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from config import Settings
from storage import LOCAL_ADMIN, ROLES, NotFound, Store


def open_store() -> Store:
    settings = Settings.from_env()
    store = Store(settings.database_url, settings.data_dir)
    store.create_schema()
    return store


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

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
    bank_export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    bank_export.set_defaults(func=cmd_bank_export)

    match = subparsers.add_parser("match", help="match images against banks through the worker pool")
    match.add_argument("paths", nargs="+", type=Path)
    match.add_argument("--bank", action="append", required=True, help="bank name (repeatable)")
    match.add_argument("--threshold", type=int)
    match.add_argument("--no-dihedral", action="store_true")
    match.add_argument("--json", action="store_true", help="one report item per line")
    match.add_argument("--out", type=Path, help="write the report here instead of stdout")
    match.set_defaults(func=cmd_match)

    jobs = subparsers.add_parser("jobs", help="list or show jobs").add_subparsers(dest="jobs_cmd", required=True)
    jobs_list = jobs.add_parser("list")
    jobs_list.add_argument("--status")
    jobs_list.set_defaults(func=cmd_jobs_list)
    jobs_show = jobs.add_parser("show")
    jobs_show.add_argument("job_id")
    jobs_show.add_argument("--items", action="store_true", help="include every item's result")
    jobs_show.set_defaults(func=cmd_jobs_show)

    audit = subparsers.add_parser("audit", help="the audit log").add_subparsers(dest="audit_cmd", required=True)
    audit.add_parser("verify", help="check the tamper-evident chain").set_defaults(func=cmd_audit_verify)


def bootstrap_admin_key(store: Store) -> None:
    """On first start, create an admin key and leave it in a private file, so a fresh install is usable."""
    if store.list_keys():
        return
    principal, plaintext = store.create_key("initial-admin", "admin")
    store.audit(LOCAL_ADMIN, "create", "api_key", principal.key_id, {"name": "initial-admin", "role": "admin"})
    path = store.data_dir / "initial-admin-key"
    path.touch(mode=0o600)
    path.write_text(plaintext + "\n")
    print(f"first start: an admin API key was written to {path} (readable by you only)", file=sys.stderr)


def cmd_serve(args) -> int:
    import uvicorn

    bootstrap_admin_key(open_store())
    uvicorn.run("api:create_app", factory=True, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_keys_create(args) -> int:
    store = open_store()
    principal, plaintext = store.create_key(args.name, args.role)
    store.audit(LOCAL_ADMIN, "create", "api_key", principal.key_id, {"name": args.name, "role": args.role})
    print(plaintext)
    print(f"key {principal.key_id} ({args.role}) created; it is shown only now", file=sys.stderr)
    return 0


def cmd_keys_list(args) -> int:
    for key in open_store().list_keys():
        print(json.dumps(key))
    return 0


def cmd_bank_create(args) -> int:
    store = open_store()
    store.create_bank(LOCAL_ADMIN, args.name, args.description, args.threshold)
    store.audit(LOCAL_ADMIN, "create", "bank", args.name)
    print(f"bank {args.name} created", file=sys.stderr)
    return 0


def cmd_bank_list(args) -> int:
    for bank in open_store().list_banks():
        print(json.dumps(bank))
    return 0


def cmd_bank_import(args) -> int:
    from imaging.banks import detect_format

    store = open_store()
    imported, rejected = store.import_bank_file(args.name, args.file.read_bytes(),
                                                detect_format(args.file.name, None))
    store.audit(LOCAL_ADMIN, "import", "bank", args.name, {"imported": imported, "rejected": len(rejected)})
    for row in rejected:
        print(f"{args.file}:{row['line']}: {row['error']}", file=sys.stderr)
    print(json.dumps({"imported": imported, "rejected": len(rejected)}))
    return 1 if rejected else 0


def cmd_bank_add(args) -> int:
    from imaging import DecodeError
    from imaging.banks import BankRecord
    from imaging.matching import hashes_for_bank

    if args.record_id and len(args.paths) > 1:
        print("--record-id names one image; give one path", file=sys.stderr)
        return 2
    store = open_store()
    records, failed = [], 0
    for path in args.paths:
        try:
            hashes = hashes_for_bank(path.read_bytes(), robust=not args.plain)
        except (OSError, DecodeError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        records.append(BankRecord(record_id=args.record_id or path.name, victim_id=args.victim_id,
                                  labels=(), **hashes))
    imported, duplicates = store.import_records(args.name, records)
    for row in duplicates:
        print(row["error"], file=sys.stderr)
    store.audit(LOCAL_ADMIN, "import", "bank", args.name, {"imported": imported, "from": "images"})
    print(json.dumps({"imported": imported, "rejected": failed + len(duplicates)}))
    return 1 if failed or duplicates else 0


def cmd_bank_export(args) -> int:
    store = open_store()
    count, text = store.export_bank_file(args.name, args.format)
    store.audit(LOCAL_ADMIN, "export", "bank", args.name, {"records": count, "format": args.format})
    sys.stdout.write(text)
    return 0


def cmd_match(args) -> int:
    from tqdm import tqdm

    from workers.dispatcher import Dispatcher
    from workers.pool import start_ray

    settings = Settings.from_env()
    store = open_store()
    for bank in args.bank:
        store.get_bank(bank)
    items, unreadable = [], 0
    for path in args.paths:
        try:
            sha256 = store.put_blob(path.read_bytes())
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            unreadable += 1
            continue
        items.append({"name": str(path), "input": {"upload": None, "sha256": sha256}})
    if not items:
        return 2
    params = {"banks": args.bank, "threshold": args.threshold, "dihedral": not args.no_dihedral}
    job, _ = store.create_job(LOCAL_ADMIN, "match_batch", params, items)
    store.audit(LOCAL_ADMIN, "create", "job", job.id, {"type": "match_batch", "items": len(items)})
    start_ray(settings.ray_address, settings.num_cpus)
    dispatcher = Dispatcher(store, chunk_size=settings.chunk_size, num_workers=settings.num_cpus,
                            only_jobs=[job.id]).start()
    try:
        with tqdm(total=len(items), unit="img", file=sys.stderr, disable=len(items) < 2) as bar:
            while (current := store.get_job(job.id)).status in ("queued", "running"):
                bar.update(current.done - bar.n)
                time.sleep(0.2)
            bar.update(current.done - bar.n)
    finally:
        dispatcher.stop()
    store.audit(LOCAL_ADMIN, "export", "job_result", job.id)
    report = [{"path": it.name, **(it.result or {"status": it.status})} for it in store.job_items(job.id)]
    out = args.out.open("w") if args.out else sys.stdout
    try:
        for row in report:
            if args.json:
                out.write(json.dumps(row) + "\n")
            else:
                found = ", ".join(f"{m['bank']}/{m['record_id']} ({m['kind']} {m['distance']})"
                                  for m in row.get("matches") or [])
                out.write(f"{row['path']}\t{row['status']}\t{found or row.get('error', '')}\n")
    finally:
        if args.out:
            out.close()
    print(f"job {job.id}: {current.status}, {current.done}/{current.total} items, {current.failed} errors",
          file=sys.stderr)
    return 0 if current.status == "succeeded" and current.failed == 0 and not unreadable else 1


def cmd_jobs_list(args) -> int:
    for job in open_store().list_jobs(status=args.status):
        print(json.dumps({"id": job.id, "type": job.type, "status": job.status, "done": job.done,
                          "total": job.total, "created_at": job.created_at.isoformat()}))
    return 0


def cmd_jobs_show(args) -> int:
    store = open_store()
    try:
        job = store.get_job(args.job_id)
    except NotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    store.audit(LOCAL_ADMIN, "read", "job", job.id)
    shown = {"id": job.id, "type": job.type, "status": job.status, "error": job.error, "params": job.params,
             "progress": {"done": job.done, "total": job.total, "failed": job.failed}}
    if args.items:
        shown["items"] = [{"name": it.name, **(it.result or {"status": it.status})} for it in store.job_items(job.id)]
    print(json.dumps(shown, indent=2))
    return 0


def cmd_audit_verify(args) -> int:
    intact, bad_id, checked = open_store().verify_audit()
    if intact:
        print(f"audit log intact: {checked} entries")
        return 0
    print(f"audit log TAMPERED: entry {bad_id} does not match the chain ({checked} entries verified before it)")
    return 1
