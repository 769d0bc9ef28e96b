"""`fimg faces`: faces in image files; `fimg faces search` against a gallery; `fimg faces calibrate` a threshold.

    fimg faces [--json] [--embeddings] PATH...
    fimg faces search PATH... --gallery NAME [--top-k K] [--threshold T]
    fimg faces calibrate DIR_OR_CSV [--target-fmr 0.001] [--gallery NAME --store]

Calibration data: a directory with one sub-directory per identity (`DIR/<identity>/<image>`), or a CSV with
columns `file` and `identity` (paths relative to the CSV; rows whose `faces` column is above 1 are skipped).
Images with other than exactly one detected, gate-passing face are left out and listed on stderr.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from fimg_service.cli.hash import expand
from fimg_service.errors import InvalidInput
from fimg_service.usecases import LOCAL_ADMIN
from imaging import DecodeError, decode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("faces", help="faces, landmarks, quality; `search` and `calibrate` modes",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="image files or directories (or: search PATH... / calibrate SRC)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (default: a summary line)")
    parser.add_argument("--embeddings", action="store_true", help="include 128-d embeddings (biometric data)")
    parser.add_argument("--gallery", help="gallery name (search; calibrate --store)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--target-fmr", type=float, default=1e-3)
    parser.add_argument("--store", action="store_true", help="calibrate: store the threshold on --gallery")
    parser.set_defaults(func=run)


def run(args) -> int:
    mode, rest = args.paths[0], [Path(p) for p in args.paths[1:]]
    if mode == "search":
        return run_search(args, rest)
    if mode == "calibrate":
        return run_calibrate(args, rest)
    return run_extract(args, [Path(p) for p in args.paths])


def analyse_path(path: Path, embeddings: bool) -> tuple[dict, list]:
    from biometrics import analyze

    row: dict = {"path": str(path)}
    try:
        decoded = decode(path.read_bytes(), scale_high_bit_depth=True)
    except OSError as exc:
        return {**row, "error": {"code": "unreadable", "message": f"cannot read: {exc.strerror or exc}"}}, []
    except DecodeError as exc:
        return {**row, "error": {"code": exc.code, "message": str(exc)}}, []
    return row, analyze(decoded.rgb, embeddings=embeddings)


def run_extract(args, paths: list[Path]) -> int:
    failed = 0
    for path in expand(paths):
        row, faces = analyse_path(path, args.embeddings)
        if "error" in row:
            failed += 1
            print(json.dumps(row) if args.json else f"{path}\terror: {row['error']['message']}", flush=True)
            continue
        row["faces"] = [face.to_dict(include_embedding=args.embeddings) for face in faces]
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            summary = ", ".join(f"box={f['box']} quality={f['quality']['score']:.0f}"
                                f"{'' if f['quality']['passed'] else ' (below gates)'}" for f in row["faces"])
            print(f"{path}\t{len(faces)} face(s)\t{summary}", flush=True)
    return 1 if failed else 0


def run_search(args, paths: list[Path]) -> int:
    from fimg_service.cli.service import open_app, read_files

    if not args.gallery or not paths:
        print("usage: fimg faces search PATH... --gallery NAME", file=sys.stderr)
        return 2
    files, failed = read_files(list(expand(paths)))
    for row in open_app().galleries.search_files(LOCAL_ADMIN, args.gallery, files, args.top_k, args.threshold):
        failed += row.get("status") == "error"
        print(json.dumps({"path": row.pop("name"), **row}), flush=True)
    return 1 if failed else 0


def calibration_set(source: Path) -> list[tuple[Path, str]]:
    if source.is_dir():
        return [(image, identity_dir.name) for identity_dir in sorted(p for p in source.iterdir() if p.is_dir())
                for image in sorted(identity_dir.iterdir()) if image.is_file()]
    try:
        with source.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InvalidInput(f"cannot read {source}: {reason}", code="unreadable") from None
    if not rows or not {"file", "identity"} <= set(rows[0]):
        raise InvalidInput(f"{source}: expected a CSV with columns file,identity", code="invalid_csv")
    bad = [i for i, row in enumerate(rows, start=2) if not (row.get("faces") or "0").strip().isdigit()]
    if bad:
        raise InvalidInput(f"{source}:{bad[0]}: the faces column must be a whole number", code="invalid_csv")
    return [(source.parent / row["file"], row["identity"]) for row in rows
            if not row.get("faces") or int(row["faces"]) <= 1]


def run_calibrate(args, rest: list[Path]) -> int:
    import numpy as np

    from biometrics import calibrate

    if len(rest) != 1:
        print("usage: fimg faces calibrate DIR_OR_CSV [--target-fmr F] [--gallery NAME --store]", file=sys.stderr)
        return 2
    if args.store and not args.gallery:
        print("--store needs --gallery", file=sys.stderr)
        return 2
    app = None
    if args.store:
        from fimg_service.cli.service import open_app

        app = open_app()
        app.galleries.get(LOCAL_ADMIN, args.gallery)
    embeddings, labels = [], []
    for path, identity in calibration_set(rest[0]):
        row, faces = analyse_path(path, embeddings=True)
        usable = [f for f in faces if f.embedding is not None]
        if "error" in row or len(usable) != 1:
            print(f"skipped {path}: {row['error']['message'] if 'error' in row else f'{len(usable)} usable faces'}",
                  file=sys.stderr)
            continue
        embeddings.append(usable[0].embedding)
        labels.append(identity)
    try:
        result = calibrate(np.asarray(embeddings), labels, target_fmr=args.target_fmr)
    except ValueError as exc:
        print(f"cannot calibrate: {exc}", file=sys.stderr)
        return 2
    report = result.to_dict()
    print(json.dumps(report, indent=2))
    if app is not None:
        app.galleries.set_threshold(LOCAL_ADMIN, args.gallery, result.threshold_at_target_fmr, report)
        print(f"gallery {args.gallery}: threshold set to {result.threshold_at_target_fmr:.4f}", file=sys.stderr)
    return 0
