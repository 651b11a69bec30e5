"""Sessions end server-side: logout, password changes and "sign out everywhere" start a new session
generation, so a copied session cookie or remember cookie stops working."""

from datetime import timedelta

from app.extensions import db
from app.models import User
from tests.conftest import post_form

PASSWORD = "correct horse battery"


def signed_in(client) -> bool:
    response = client.get("/projects")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def log_in(client, remember=True):
    data = {"email": "owner@example.com", "password": PASSWORD}
    if remember:
        data["remember"] = "1"
    response = post_form(client, "/login", data)
    assert response.status_code == 303
    return response


def replay(app, name: str, value: str):
    """A fresh browser holding only a stolen copy of one cookie."""
    other = app.test_client()
    other.set_cookie(name, value, domain="localhost")
    return other


def test_cookies_copied_before_logout_are_refused_after_it(app, client, owner):
    log_in(client)
    session_cookie = client.get_cookie("session").value
    remember_cookie = client.get_cookie("remember_token").value
    # Each copy alone signs a browser in before the logout.
    assert signed_in(replay(app, "session", session_cookie))
    assert signed_in(replay(app, "remember_token", remember_cookie))
    assert post_form(client, "/logout").status_code == 303
    assert not signed_in(client)
    assert not signed_in(replay(app, "session", session_cookie))
    assert not signed_in(replay(app, "remember_token", remember_cookie))
    # Logging in again works, under the next generation.
    log_in(client)
    assert signed_in(client)


def test_logout_ends_the_other_browsers_too(app, client, owner):
    log_in(client, remember=False)
    laptop = app.test_client()
    log_in(laptop)
    post_form(client, "/logout")
    assert not signed_in(laptop)


def test_sign_out_everywhere_keeps_this_browser(app, client, owner):
    log_in(client)
    laptop = app.test_client()
    log_in(laptop)
    old_remember = client.get_cookie("remember_token").value
    page = client.get("/account/password").get_data(as_text=True)
    assert 'action="/account/sign-out-everywhere"' in page
    response = post_form(client, "/account/sign-out-everywhere")
    assert response.status_code == 200 and "has been signed out" in response.get_data(as_text=True)
    assert signed_in(client)
    assert not signed_in(laptop)
    # This browser's remember cookie was renewed under the new generation; the old copy is refused.
    assert client.get_cookie("remember_token").value != old_remember
    assert signed_in(replay(app, "remember_token", client.get_cookie("remember_token").value))
    assert not signed_in(replay(app, "remember_token", old_remember))


def test_sign_out_everywhere_needs_login_and_csrf(app, client, owner):
    assert client.post("/account/sign-out-everywhere").status_code in (302, 400)
    log_in(client)
    version = db.session.get(User, owner.id).session_version
    assert client.post("/account/sign-out-everywhere").status_code == 400  # no CSRF token
    db.session.expire_all()
    assert db.session.get(User, owner.id).session_version == version


def test_password_change_revokes_remember_cookies(app, client, owner):
    log_in(client)
    old_remember = client.get_cookie("remember_token").value
    response = post_form(client, "/account/password", {"current_password": PASSWORD, "new_password": "a much longer secret"})
    assert response.status_code == 200
    assert not signed_in(replay(app, "remember_token", old_remember))
    assert signed_in(client)


def test_a_password_reset_outside_the_app_ends_sessions(app, client, owner):
    """`User.set_password` (the CLI reset, the password page) starts a new generation by itself."""
    log_in(client)
    remember = client.get_cookie("remember_token").value
    user = db.session.get(User, owner.id)
    user.set_password("reset by an administrator")
    db.session.commit()
    assert not signed_in(client)
    assert not signed_in(replay(app, "remember_token", remember))


def test_remember_days_setting_is_checked():
    from app.config import SettingsError, load_settings

    loaded = load_settings({"KIKET_ENV": "production", "KIKET_REMEMBER_DAYS": "3"}, "/tmp")
    assert loaded["REMEMBER_COOKIE_SECURE"] is True and loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["REMEMBER_COOKIE_DURATION"] == timedelta(days=3)
    assert load_settings({}, "/tmp")["REMEMBER_COOKIE_DURATION"] == timedelta(days=14)
    for junk in ("0", "two", "-1"):
        try:
            load_settings({"KIKET_REMEMBER_DAYS": junk}, "/tmp")
        except SettingsError as error:
            assert "KIKET_REMEMBER_DAYS" in str(error)
        else:
            raise AssertionError(f"KIKET_REMEMBER_DAYS={junk} accepted")


def test_production_remember_cookie_is_secure_and_lasts_the_set_days(app, settings, owner):
    from app.factory import create_app

    production = create_app({**settings, "KIKET_ENV": "production", "REMEMBER_COOKIE_SECURE": True,
                             "SESSION_COOKIE_SECURE": True, "REMEMBER_COOKIE_DURATION": timedelta(days=3)})
    browser = production.test_client()
    browser.environ_base["wsgi.url_scheme"] = "https"
    data = {"email": "owner@example.com", "password": PASSWORD, "remember": "1"}
    response = post_form(browser, "/login", data, headers={"Referer": "https://localhost/login"})
    assert response.status_code == 303, response.get_data(as_text=True)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=259200" in cookie or "Expires=" in cookie
