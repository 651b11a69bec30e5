"""Layout, measured with element bounding boxes: cards of one grid row share their top edge, a card under a grid
keeps a gap from it, and no table is wider than its card (wide ones scroll inside a container of the card).

On the project, repository, revision and workflow pages of a project synced from the engineering fixture, at a
laptop width and at a narrow one."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.support.fixture_projects import sync_remote
from tests.support.sync_repos import bare_remote

pytestmark = pytest.mark.browser

MEASURE = """() => {
  const problems = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.querySelector('h2') ? ' "' + el.querySelector('h2').textContent.trim() + '"' : '');
  for (const grid of document.querySelectorAll('.grid')) {
    const items = [...grid.children].filter((el) => el.getBoundingClientRect().height > 0);
    // Grid rows: items whose boxes overlap vertically by more than half of the shorter one sit in one row.
    const lefts = new Set(items.map((el) => Math.round(el.getBoundingClientRect().left)));
    const columns = lefts.size;
    items.forEach((el, i) => {
      const first = items[i - (i % columns)];
      const top = el.getBoundingClientRect().top, rowTop = first.getBoundingClientRect().top;
      if (Math.abs(top - rowTop) > 0.5) problems.push(`${name(el)} sits ${top - rowTop}px below ${name(first)} in its grid row`);
    });
    let next = grid.nextElementSibling;
    while (next && next.getBoundingClientRect().height === 0) next = next.nextElementSibling;
    if (next) {
      const gap = next.getBoundingClientRect().top - grid.getBoundingClientRect().bottom;
      if (gap < 8) problems.push(`${name(next)} is ${gap}px under the grid above it`);
    }
  }
  for (const table of document.querySelectorAll('main table')) {
    if (table.getBoundingClientRect().height === 0) continue;
    const card = table.closest('.card');
    if (!card) continue;
    let box = table.parentElement, scroller = null;
    while (box && box !== card.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') { scroller = box; break; }
      box = box.parentElement;
    }
    const cardBox = card.getBoundingClientRect();
    const inner = cardBox.right - parseFloat(getComputedStyle(card).borderRightWidth);
    const label = table.getAttribute('aria-label') || name(card);
    if (scroller) {
      if (scroller.getBoundingClientRect().right > inner + 0.5)
        problems.push(`the scroll container of table "${label}" is wider than its card`);
    } else if (table.getBoundingClientRect().right > inner + 0.5) {
      problems.push(`table "${label}" is ${table.getBoundingClientRect().right - inner}px wider than its card and cannot scroll`);
    }
  }
  return problems;
}"""


@pytest.fixture
def synced(_schema, tmp_path):
    from app.extensions import db
    from app.models import ConfigRevision
    from app.services import accounts
    from app.services.sync import configuration

    with _schema.app_context():
        owner = accounts.create_user("ada@example.com", PASSWORD, "owner")
        project, repository = sync_remote(_schema, owner, bare_remote(tmp_path, "engineering"), "ENG")
        revision = db.session.get(ConfigRevision, configuration.active_revision(project.id).id)
        workflows = sorted(configuration.revision_config(revision).workflows)
        return {"repository": repository.id, "revision": revision.id, "workflows": workflows}


@pytest.mark.parametrize("width", [1280, 900])
def test_cards_align_and_tables_stay_inside_their_cards(new_page, worker, synced, width):
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, "ada@example.com")
    urls = ["/projects/ENG", f"/repositories/{synced['repository']}", f"/repositories/revisions/{synced['revision']}",
            "/projects/ENG/configuration"]
    urls += [f"/repositories/revisions/{synced['revision']}/workflows/{wf}" for wf in synced["workflows"]]
    assert "incident" in " ".join(synced["workflows"])
    found = {}
    for url in urls:
        page.goto(url)
        expect(page.locator("main h1")).to_be_visible()
        if url.startswith("/repositories/") and "/revisions/" not in url:
            expect(page.get_by_label("Branch", exact=True)).to_be_visible()
        problems = page.evaluate(MEASURE)
        if problems:
            found[url] = problems
    assert not found, found


def test_the_measure_catches_a_shifted_card_and_a_cut_table(new_page, worker, synced):
    """The check can fail: the old `section.card + section.card` margin inside a grid, and a table without its
    scroll container, are both reported."""
    page = new_page()
    page.set_viewport_size({"width": 900, "height": 900})
    sign_in(page, "ada@example.com")
    page.goto(f"/repositories/revisions/{synced['revision']}/workflows/{synced['workflows'][0]}")
    # Styles set through the CSSOM (the page's CSP refuses a <style> element).
    page.evaluate("""() => {
      for (const wrap of document.querySelectorAll('.table-wrap')) wrap.style.overflowX = 'visible';
      for (const table of document.querySelectorAll('main table')) table.style.minWidth = '1400px';
    }""")
    problems = page.evaluate(MEASURE)
    assert any("wider than its card and cannot scroll" in p for p in problems), problems
    page.goto("/projects/ENG")
    page.evaluate("""() => {
      for (const card of document.querySelectorAll('.grid > section.card + section.card')) card.style.marginTop = '16px';
    }""")
    problems = page.evaluate(MEASURE)
    assert any("below" in p and "in its grid row" in p for p in problems), problems
