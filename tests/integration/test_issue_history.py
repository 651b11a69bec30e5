"""The issue page's history in words: people, states, transitions, hooks and automations by name, no raw ids."""

from __future__ import annotations

import html as html_lib
import re

from tests.support.issue_events import run_default, triaged_crash


def history_lines(client, key: str, number: int) -> list[str]:
    html = client.get(f"/projects/{key}/issues/{number}").get_data(as_text=True)
    section = html.split('class="card history"', 1)[1].split("</section>", 1)[0]
    return [html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li))).strip()
            for li in re.findall(r"<li>(.*?)</li>", section, re.S)]


def test_history_reads_as_sentences(app, client, make_user, login):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import issues, transitions

    ada = make_user("ada@example.com", "owner")
    ada.name = "Ada"
    db.session.commit()
    _, issue = triaged_crash(app, ada)
    issue = db.session.get(Issue, issue.id)
    issues.update_issue(issue.id, ada, issue.lock_version, assignee_id=ada.id, priority="high")
    transitions.force_transition(issue.id, ada, transition="Accept", reason="urgent")
    transitions.force_transition(issue.id, ada, transition="Ready for QA", reason="reviewed")
    transitions.force_transition(issue.id, ada, transition="Verified", reason="shipped in 2.1")
    run_default(app)

    login("ada@example.com")
    lines = history_lines(client, "BUG", issue.number)
    text = "\n".join(lines)
    assert "Ada created it in Reported" in text
    assert "Automation 'Critical bug alert' notified reporter" in text
    assert "Ada moved it from Reported to Triaging (Start Triage)" in text
    assert "Ada assigned it to Ada and set the priority to high" in text
    assert "Ada forced it from Triaging to Fixing: urgent (skipped: permission: Only roles triager, developer" in text
    assert "Ada forced it from Verifying to Closed: shipped in 2.1" in text
    assert "Ada moved it from Fixing to Verifying (Ready for QA)" in text
    assert "Hooks of Closed ran: 1 action" in text
    assert "system" not in text and "hooks.run" not in text and "automation.run" not in text
    assert "triaging" not in text
