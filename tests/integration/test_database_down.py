"""With the database unreachable, pages answer 503 with Retry-After from a page that needs no database."""

import pytest

from tests.conftest import IsolatedClient

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/kiket?connect_timeout=2"


@pytest.fixture
def down(settings, owner, login, client):
    """An app on a database nobody answers, and a client holding a session made while it was up."""
    from app.factory import create_app

    login()
    app = create_app({**settings, "SQLALCHEMY_DATABASE_URI": DEAD_DATABASE})
    app.test_client_class = IsolatedClient
    dead = app.test_client()
    for cookie in client._cookies.values():
        dead.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    return dead


@pytest.mark.parametrize("path", ["/login", "/projects", "/projects/ENG/issues/1", "/repositories/"])
def test_pages_answer_503_with_retry_after(down, path):
    response = down.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    html = response.get_data(as_text=True)
    assert "The database is not answering" in html and "Log out" not in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_htmx_and_api_callers_get_their_own_shapes(down):
    response = down.get("/projects", headers={"HX-Request": "true"})
    assert response.status_code == 503 and "<html" not in response.get_data(as_text=True)
    response = down.get("/api/v1/anything")
    assert response.status_code in (404, 503)


def test_an_error_page_whose_layout_needs_the_database_falls_back(down):
    # Routing fails first (404); the usual page then reads the signed-in user and the database fails.
    response = down.get("/no-such-page")
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True)


def test_up_names_the_database(down):
    response = down.get("/up")
    assert response.status_code == 503 and "database" in response.json["failing"]
