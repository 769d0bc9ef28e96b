"""`fimg age`: progress the face in a photo to older ages; writes labelled images, overlays, meshes, a contact
sheet and provenance.json to a directory. Bad input is one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "age",
        help="age progression of a face photo (labelled approximations)",
        description="Progress the face in PHOTO from --age to every --to age. Output: age-<N>.png, face-<N>.png "
        "(hair and outline hidden), overlay-<N>.png, mesh-<N>.json per target, sheet.png and provenance.json in "
        "--out. Every image is labelled 'AGE PROGRESSION - APPROXIMATION'.",
        allow_abbrev=False,
    )
    parser.add_argument("photo", type=Path, metavar="PHOTO")
    parser.add_argument("--age", type=float, required=True, help="age in the photo (1-25)")
    parser.add_argument("--sex", required=True, choices=("f", "m", "u"), help="female, male or unknown")
    parser.add_argument("--to", type=float, nargs="+", required=True, metavar="AGE", help="target ages (1-25)")
    parser.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="PHOTO:AGE:RELATION",
        help="a relative's photo, their age in it and the relation (e.g. mum.jpg:12:mother); repeatable",
    )
    parser.add_argument("--family-weight", type=float, default=None,
                        help="0-1, how far the proportions move toward the relatives' (default 0.25)")
    parser.add_argument("--appearance-weight", type=float, default=None,
                        help="0-1, how much of the relatives' appearance is blended in (default 0.4; eyes never)")
    parser.add_argument("--prepare-old-photo", action="store_true",
                        help="de-screen, denoise, correct fading and sharpen a scanned print first")
    parser.add_argument("--face-index", type=int, default=None, help="which face, left to right from 0")
    parser.add_argument("--label-note", default=None,
                        help="words added after the fixed label (plain text, at most 60 characters)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.set_defaults(func=run)


def parse_family(spec: str) -> tuple[Path, float, str]:
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise ValueError(f"--family {spec!r}: expected PHOTO:AGE:RELATION")
    path, age, relation = parts
    try:
        return Path(path), float(age), relation.strip()
    except ValueError:
        raise ValueError(f"--family {spec!r}: age {age!r} is not a number") from None


def run(args) -> int:
    from fimg_service.errors import FimgError
    from fimg_service.usecases.local import age_progression

    try:
        family = []
        for spec in args.family:
            path, age, relation = parse_family(spec)
            family.append((_read(path, "family photo"), age, relation))
        result = age_progression(
            _read(args.photo, "photo"),
            family,
            age=args.age,
            sex=args.sex,
            target_ages=args.to,
            face_index=args.face_index,
            label_note=args.label_note,
            family_weight=args.family_weight,
            appearance_weight=args.appearance_weight,
            prepare_old_photo=args.prepare_old_photo,
        )
    except FimgError as exc:
        print(f"fimg: {exc.message} ({exc.code})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:
        print(f"fimg: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in result.to_files().items():
            (args.out / name).write_bytes(data)
    except OSError as exc:
        print(f"fimg: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for age in result.images:
        print(args.out / f"age-{age:g}.png")
        print(args.out / f"face-{age:g}.png")
    print(args.out / "sheet.png")
    print(args.out / "provenance.json")
    return 0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
