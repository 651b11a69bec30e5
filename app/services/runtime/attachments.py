"""Issue attachments: streamed to STORAGE_DIR/attachments/<project_id>/<uuid>, size-limited, served as downloads."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.issues import Attachment, Issue
from app.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
DOCUMENT_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def storage_root() -> Path:
    return Path(current_app.config["STORAGE_DIR"]) / "attachments"


def path_for(attachment: Attachment) -> Path:
    """Where the attachment's bytes live (never under static/; the name is a uuid, not user input)."""
    return storage_root() / str(attachment.project_id) / attachment.storage_name


def safe_filename(name: str | None) -> str:
    """The original name, kept for display and downloads: no directories, no control characters, ≤255."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[:255] or "attachment"


def save(issue_id: int, stream: BinaryIO, filename: str | None, content_type: str | None,
         uploaded_by_id: int | None, document_key: str | None = None) -> Attachment:
    """Stream an upload to disk (refusing it past KIKET_MAX_ATTACHMENT_BYTES) and record it."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"no issue {issue_id}")
    if document_key is not None and not DOCUMENT_KEY.match(document_key):
        raise Invalid({"document_key": "use lowercase letters, digits, _ . -; at most 64 characters"})
    limit = current_app.config["KIKET_MAX_ATTACHMENT_BYTES"]
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not TOKEN.match(content_type):
        content_type = "application/octet-stream"
    attachment = Attachment(
        project_id=issue.project_id, issue_id=issue.id, storage_name=str(uuid.uuid4()), filename=safe_filename(filename),
        content_type=content_type, document_key=document_key, uploaded_by_id=uploaded_by_id,
    )
    final = path_for(attachment)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise Invalid({"file": f"larger than the {limit}-byte limit"})
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Invalid({"file": "is empty"})
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    attachment.size, attachment.sha256 = size, digest.hexdigest()
    db.session.add(attachment)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        final.unlink(missing_ok=True)
        raise
    log.info("attachment %s saved issue=%s bytes=%d", attachment.id, issue.id, size)
    return attachment


def get(attachment_id: int) -> tuple[Attachment, Path]:
    """The attachment and its file, for `send_file(path, mimetype=…, as_attachment=True, download_name=…)`."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(f"no attachment {attachment_id}")
    path = path_for(attachment)
    if not path.is_file():
        log.error("attachment %s has no file at %s", attachment.id, path)
        raise NotFound(f"the file of attachment {attachment_id} is missing")
    return attachment, path


def delete(attachment_id: int) -> None:
    """Remove the record, then the file (a leftover file is harmless; a record without a file is not)."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(f"no attachment {attachment_id}")
    path = path_for(attachment)
    db.session.delete(attachment)
    db.session.commit()
    path.unlink(missing_ok=True)
    log.info("attachment %s deleted", attachment_id)


def document_keys(issue_id: int) -> frozenset[str]:
    """The document tags present on an issue (for required_documents gates)."""
    return frozenset(db.session.execute(
        select(Attachment.document_key).where(Attachment.issue_id == issue_id, Attachment.document_key.is_not(None))
    ).scalars())
