"""Structured lines in the service log: `event=NAME key=value ...`, one per event worth following (a job's state
change, a failed item). They carry ids, counts and error codes only: never image bytes, hashes, file names or
keys, so the log can be shared with whoever runs the machine.

    log_event(log, "job_state", job=job_id, status="running")
"""
from __future__ import annotations

import json
import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # how `fimg serve` writes fimg's loggers
_BARE = re.compile(r"[\w.:/@-]+")


def _value(value) -> str:
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text)


def format_event(name: str, **fields) -> str:
    return " ".join([f"event={name}", *(f"{key}={_value(value)}" for key, value in fields.items()
                                        if value is not None)])


def log_event(log: logging.Logger, name: str, level: int = logging.INFO, **fields) -> None:
    log.log(level, format_event(name, **fields))
