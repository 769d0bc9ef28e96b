"""Uploads: files are checked to be usable images, stored once by SHA-256 and owned by their uploader.

The check (`imaging.check_image`) does not decode a photo at full resolution: the worker that hashes it does, and
a file that passes here but fails there is that item's reported error."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence

from fimg_service.errors import InvalidInput, NotFound, TooLarge, problem
from fimg_service.storage.records import UploadRecord
from fimg_service.usecases.base import Principal, UseCases, audit
from fimg_service.usecases.quotas import Quotas
from imaging import DecodeBudget, DecodeError, check_image
from imaging.preview import review_png

ZIP_MAX_ENTRIES = 10_000
MAX_NAME_LENGTH = 500


def expand_zips(files: Iterable[tuple[str, bytes]], max_total: int) -> list[tuple[str, bytes]]:
    """The files, with each .zip replaced by its entries (bounded: entry count and total uncompressed size)."""
    out: list[tuple[str, bytes]] = []
    for name, data in files:
        if name.lower().endswith(".zip") and zipfile.is_zipfile(io.BytesIO(data)):
            out.extend(_expand_zip(name, data, max_total))
        else:
            out.append((name, data))
    return out


def _expand_zip(name: str, data: bytes, max_total: int) -> list[tuple[str, bytes]]:
    out, total = [], 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [e for e in archive.infolist() if not e.is_dir()]
            if len(entries) > ZIP_MAX_ENTRIES:
                raise TooLarge(f"{name} holds {len(entries)} files; at most {ZIP_MAX_ENTRIES}",
                               code="too_many_entries")
            for entry in entries:
                total += entry.file_size
                if total > max_total:
                    raise TooLarge(f"{name} expands beyond {max_total} bytes")
                with archive.open(entry) as handle:
                    content = handle.read(entry.file_size + 1)
                if len(content) > entry.file_size:
                    raise InvalidInput(f"{name}: entry {entry.filename} is larger than its header says",
                                       code="corrupt_zip")
                out.append((f"{name}/{entry.filename}", content))
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise InvalidInput(f"{name} is not a readable zip archive: {exc}", code="corrupt_zip") from None
    return out


class Uploads(UseCases):
    def __init__(self, storage, max_total_bytes: int, quotas: Quotas, max_request_pixels: int):
        super().__init__(storage)
        self.max_total_bytes, self.quotas, self.max_request_pixels = max_total_bytes, quotas, max_request_pixels

    def add(self, who: Principal, files: Iterable[tuple[str, bytes]], require_image: bool = True,
            expand_archives: bool = True) -> tuple[list[UploadRecord], list[dict]]:
        """Store every usable image (a .zip is expanded); the rest come back as rejected {name, code, message}.

        All of a request's uploads and their audit row commit together; with none usable, nothing is stored
        and the rejection is an InvalidInput carrying `rejected`. Without `require_image` a file the check
        refuses is stored too (a match batch still reports its digests, which may match exactly, and its error).
        The files of one request are checked for at most `max_request_pixels` together (as their headers declare
        them); the files past that budget are rejected (`decode_budget_exceeded`) before their pixels are read.
        """
        accepted, rejected = [], []
        budget = DecodeBudget(self.max_request_pixels) if require_image else None
        for name, data in expand_zips(files, self.max_total_bytes) if expand_archives else files:
            if len(name) > MAX_NAME_LENGTH:
                rejected.append(problem("name_too_long", f"file names are limited to {MAX_NAME_LENGTH} characters",
                                        name=name[:MAX_NAME_LENGTH]))
                continue
            try:
                image = check_image(data, budget=budget)
            except DecodeError as exc:
                if require_image:
                    rejected.append(problem(exc.code, str(exc), name=name))
                    continue
                image = None
            accepted.append((name, data, image))
        if not accepted:
            raise InvalidInput("none of the files is a usable image", code="no_valid_files", rejected=rejected)
        with self.storage.read() as unit:
            self.quotas.check_stored(unit, who, sum(len(data) for _, data, _ in accepted))
        digests = [self.storage.blobs.put(data) for _, data, _ in accepted]
        with self.storage.unit() as unit:
            rows = [unit.uploads.add(who.key_id, name, sha256, len(data), *(
                        (image.format, image.width, image.height) if image else ()))
                    for (name, data, image), sha256 in zip(accepted, digests)]
            audit(unit, who, "create", "uploads", f"{len(rows)} uploads",
                  {"ids": [r.id for r in rows], "rejected": len(rejected)})
        return rows, rejected

    def get(self, who: Principal, upload_id: str) -> UploadRecord:
        """One of the caller's uploads (any, for an admin); another's answers NotFound, so ids leak nothing."""
        [upload] = self.get_many(who, [upload_id])
        return upload

    def get_many(self, who: Principal, upload_ids: Sequence[str]) -> list[UploadRecord]:
        """The caller's uploads in the order asked, read in one transaction; NotFound for the first that is not."""
        with self.storage.read() as unit:
            found = unit.uploads.get_many(set(upload_ids))
        for upload_id in upload_ids:
            upload = found.get(upload_id)
            if upload is None or not who.owns(upload.owner_id):
                raise NotFound(f"no upload with id {upload_id!r}")
        return [found[upload_id] for upload_id in upload_ids]

    def resolver(self, who: Principal):
        return lambda upload_ids: self.get_many(who, upload_ids)

    def data(self, upload: UploadRecord) -> bytes:
        return self.storage.blobs.get(upload.sha256)

    def review_copy(self, who: Principal, upload_id: str, reveal: bool = False) -> bytes:
        """A small PNG of one of the caller's own uploads for a person to review: greyscale and blurred unless
        they chose to reveal it. Each view is audited; nobody else's upload is shown, an admin's neither."""
        with self.storage.read() as unit:
            found = unit.uploads.get_many({upload_id}).get(upload_id)
        if found is None or found.owner_id is None or found.owner_id != who.key_id:
            raise NotFound(f"no upload of yours with id {upload_id!r}")
        with self.storage.unit() as unit:
            audit(unit, who, "reveal" if reveal else "read", "upload_image", found.id, {"obscured": not reveal})
        try:
            return review_png(self.data(found), obscured=not reveal)
        except DecodeError as exc:
            raise InvalidInput(f"this upload cannot be shown: {exc}", code=exc.code) from None
