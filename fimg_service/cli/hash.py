"""`fimg hash`: evidence digests and PDQ of files, one line each; a bad file is a line with its error."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from imaging import DecodeError, decode, digests, pdq, pdq_dihedral


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hash", help="digests and PDQ of image files (directories are walked)")
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--dihedral", action="store_true", help="also the 8 rotation/flip PDQ hashes")
    parser.set_defaults(func=run)


def expand(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def hash_path(path: Path, dihedral: bool) -> dict:
    row: dict = {"path": str(path)}
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {**row, "error": {"code": "unreadable", "message": f"cannot read: {exc.strerror or exc}"}}
    evidence = digests(data)
    row.update(md5=evidence.md5, sha1=evidence.sha1, sha256=evidence.sha256)
    try:
        decoded = decode(data)
    except DecodeError as exc:
        return {**row, "error": {"code": exc.code, "message": str(exc)}}
    if dihedral:
        hashes, quality = pdq_dihedral(decoded.rgb)
        row.update(pdq=str(hashes[0]), quality=quality, dihedral=[str(h) for h in hashes])
    else:
        hash_value, quality = pdq(decoded.rgb)
        row.update(pdq=str(hash_value), quality=quality)
    row.update(width=decoded.width, height=decoded.height)
    if decoded.notes:
        row["notes"] = decoded.notes
    return row


def run(args) -> int:
    from tqdm import tqdm

    paths = list(expand(args.paths))
    failed = 0
    for path in tqdm(paths, unit="file", file=sys.stderr, disable=len(paths) < 10 or not sys.stderr.isatty()):
        row = hash_path(path, args.dihedral)
        failed += "error" in row
        if args.json:
            print(json.dumps(row), flush=True)
        elif "error" in row:
            print(f"{row['path']}\terror: {row['error']['message']}", flush=True)
        else:
            print(f"{row['sha256']}\t{row['pdq']}\t{row['quality']}\t{row['path']}", flush=True)
    if failed:
        print(f"{failed} of {len(paths)} files failed", file=sys.stderr)
    return 1 if failed else 0
