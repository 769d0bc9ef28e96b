"""The `fimg` command line: one sub-command module per capability.

Each module in this package exposes `register(subparsers)`, which adds its parser(s) and sets
`func=handler` where `handler(args) -> int` returns the process exit code. Every error a user can cause or fix
(`fimg_service.errors.FimgError`, an outdated schema) is one line, `fimg: <message>`, and exit status 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("hash", "service", "faces", "age")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fimg", description="Forensic imaging and biometrics tools.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"fimg_service.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fimg_service.errors import FimgError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FimgError as exc:
        print(f"fimg: {exc.message}", file=sys.stderr)
        for part in exc.detail.get("rejected", ()):  # why each file or line was refused
            print(f"  {part.get('name', part.get('line', ''))}: {part['message']}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
