"""Items that come from uploads: ownership checks on the service side, bytes handed to the worker."""
from __future__ import annotations

from storage import NotFound, Principal, Store
from workers.registry import JobInputError


def upload_items(store: Store, who: Principal, upload_ids: list[str]) -> list[dict]:
    items = []
    for upload_id in upload_ids:
        try:
            upload = store.get_upload(upload_id, who)
        except NotFound as exc:
            raise JobInputError(str(exc), status_code=404) from exc
        items.append({"name": upload.name, "input": {"upload": upload.id, "sha256": upload.sha256}})
    return items


def load_upload_item(store: Store, item_input: dict) -> dict:
    return {"data": store.get_blob(item_input["sha256"])}
