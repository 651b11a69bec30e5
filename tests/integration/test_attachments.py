"""Attachments are streamed to storage under a uuid, size-limited, and tagged for required documents."""

import hashlib
import io
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Attachment, Issue
from app.services.errors import Invalid, NotFound
from app.services.projects import create_project
from app.services.runtime import attachments, issue_keys


@pytest.fixture
def issue(app, make_user, tmp_path):
    # Project ids restart with every test's clean database: a storage directory per test.
    app.config["STORAGE_DIR"] = str(tmp_path / "storage")
    owner = make_user()
    project = create_project(owner, "LEG", "Legal", "", "kanban")
    number = issue_keys.allocate_number(project.id)
    issue = Issue(project_id=project.id, number=number, key=f"LEG-{number}", issue_type="contract", title="NDA",
                  state="draft", workflow_id="legal", workflow_version="0" * 64, reporter_id=owner.id)
    db.session.add(issue)
    db.session.commit()
    return issue


def test_save_stores_the_bytes_under_storage_with_a_uuid_name(app, issue):
    data = b"%PDF-1.7 signed contract" * 100
    saved = attachments.save(issue.id, io.BytesIO(data), "../../etc/contract\x00.pdf", "application/pdf; charset=x",
                             issue.reporter_id, document_key="signed_contract")
    attachment, path = attachments.get(saved.id)
    root = Path(app.config["STORAGE_DIR"]) / "attachments" / str(issue.project_id)
    assert path == root / attachment.storage_name and path.read_bytes() == data
    assert (attachment.filename, attachment.content_type, attachment.size) == ("contract.pdf", "application/pdf", len(data))
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachments.document_keys(issue.id) == frozenset({"signed_contract"})
    assert not any(p.name.endswith(".part") for p in root.iterdir())


def test_odd_names_and_types_get_safe_defaults(issue):
    saved = attachments.save(issue.id, io.BytesIO(b"x"), "...", "not a type\r\nX: y", None)
    assert (saved.filename, saved.content_type, saved.document_key) == ("attachment", "application/octet-stream", None)


def test_oversized_uploads_are_refused_and_leave_nothing(app, issue):
    app.config["KIKET_MAX_ATTACHMENT_BYTES"] = 1000
    with pytest.raises(Invalid) as refused:
        attachments.save(issue.id, io.BytesIO(b"a" * 1001), "big.bin", "application/octet-stream", None)
    assert "1000-byte limit" in refused.value.problems["file"]
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 0
    root = Path(app.config["STORAGE_DIR"]) / "attachments" / str(issue.project_id)
    assert list(root.iterdir()) == []
    assert attachments.save(issue.id, io.BytesIO(b"a" * 1000), "ok.bin", None, None).size == 1000


@pytest.mark.parametrize("key", ["Signed Contract", "../x", "", "x" * 65])
def test_document_keys_are_checked(issue, key):
    with pytest.raises(Invalid):
        attachments.save(issue.id, io.BytesIO(b"x"), "a.txt", "text/plain", None, document_key=key)


def test_empty_files_and_unknown_issues_are_refused(issue):
    with pytest.raises(Invalid):
        attachments.save(issue.id, io.BytesIO(b""), "empty.txt", "text/plain", None)
    with pytest.raises(NotFound):
        attachments.save(issue.id + 99, io.BytesIO(b"x"), "a.txt", "text/plain", None)


def test_delete_removes_record_and_file(issue):
    saved = attachments.save(issue.id, io.BytesIO(b"hello"), "a.txt", "text/plain", None)
    _, path = attachments.get(saved.id)
    attachments.delete(saved.id)
    assert not path.exists()
    with pytest.raises(NotFound):
        attachments.get(saved.id)
