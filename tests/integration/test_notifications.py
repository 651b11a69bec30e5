"""Notifications: in-app rows with unread counts, email through SMTP when configured, else the outbox."""

import socketserver
import threading

import pytest

from app.models import EmailOutbox
from app.services.errors import Invalid
from app.services.projects import create_project
from app.services.runtime import notifications


@pytest.fixture
def people(make_user):
    owner = make_user()
    dev = make_user("dev@example.com", "member")
    project = create_project(owner, "ENG", "Engineering", "", "kanban")
    return owner, dev, project


class FakeSMTP(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib: records each message's envelope and data."""

    allow_reuse_address = True

    def __init__(self):
        self.messages = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                envelope = {"rcpt": []}
                self.wfile.write(b"220 fake ESMTP\r\n")
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250 fake\r\n")
                    elif verb == "MAIL":
                        envelope["from"] = command
                        self.wfile.write(b"250 OK\r\n")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(command)
                        self.wfile.write(b"250 OK\r\n")
                    elif verb == "DATA":
                        self.wfile.write(b"354 go on\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        server.messages.append({**envelope, "data": data.decode()})
                        envelope = {"rcpt": []}
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 OK\r\n")

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def smtp(app):
    server = FakeSMTP()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.config["KIKET_SMTP_URL"] = f"smtp://127.0.0.1:{server.server_address[1]}?from=kiket@example.com"
    yield server
    server.shutdown()
    server.server_close()


def test_in_app_notifications_count_list_and_mark_read(people):
    owner, dev, project = people
    notifications.notify([dev.id, owner.id, dev.id], project.id, None, "ENG-1 moved to review", "info")
    notifications.notify([dev.id], project.id, None, "SLA breached on ENG-1", "error")
    assert notifications.unread_count(dev.id) == 2
    assert notifications.unread_count(owner.id) == 1
    listed = notifications.list_for(dev.id)
    assert [(n.message, n.level) for n in listed] == [("SLA breached on ENG-1", "critical"), ("ENG-1 moved to review", "info")]

    owners = notifications.list_for(owner.id)
    assert notifications.mark_read(dev.id, [listed[0].id, owners[0].id]) == 1  # someone else's id is ignored
    assert notifications.unread_count(dev.id) == 1
    assert notifications.unread_count(owner.id) == 1
    assert [n.message for n in notifications.list_for(dev.id, unread_only=True)] == ["ENG-1 moved to review"]
    assert notifications.mark_read(dev.id, "all") == 1
    assert notifications.unread_count(dev.id) == 0
    assert notifications.mark_read(dev.id, []) == 0


def test_email_without_smtp_stays_in_the_outbox(app, people):
    owner, dev, project = people
    assert app.config["KIKET_SMTP_URL"] is None
    notifications.notify([dev.id], project.id, None, "Approval requested on ENG-7\nPlease review.", "warning",
                         channel="email", emails=["legal@example.com", "not-an-address"])
    emails = notifications.outbox()
    assert sorted(e.to for e in emails) == ["dev@example.com", "legal@example.com"]
    assert all(e.sent_at is None and e.error is None for e in emails)
    assert emails[0].subject == "[Kiket warning] Approval requested on ENG-7"
    assert notifications.unread_count(dev.id) == 1  # the bell is complete whatever the channel


def test_email_with_smtp_is_sent_and_recorded(people, smtp):
    owner, dev, project = people
    notifications.notify([dev.id], project.id, None, "ENG-3 was assigned to you", "info", channel="email")
    (message,) = smtp.messages
    assert "<dev@example.com>" in message["rcpt"][0] and "kiket@example.com" in message["from"]
    assert "Subject: [Kiket] ENG-3 was assigned to you" in message["data"]
    (email,) = notifications.outbox()
    assert email.sent_at is not None and email.error is None


def test_a_failed_smtp_send_keeps_the_error(app, people):
    owner, dev, project = people
    app.config["KIKET_SMTP_URL"] = "smtp://127.0.0.1:1"
    notifications.notify([dev.id], project.id, None, "hello", channel="email")
    (email,) = notifications.outbox()
    assert email.sent_at is None and "ConnectionRefusedError" in email.error
    assert isinstance(email, EmailOutbox)


@pytest.mark.parametrize("level,channel", [("loud", "in_app"), ("info", "carrier_pigeon")])
def test_bad_level_or_channel_is_invalid(people, level, channel):
    owner, dev, project = people
    with pytest.raises(Invalid):
        notifications.notify([dev.id], project.id, None, "x", level, channel)
