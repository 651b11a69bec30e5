"""Log-in and invitation throttling: per account (or invitation) and per client address, in Redis."""

import re

from app.services import throttle
from tests.conftest import post_form

PASSWORD = "correct horse battery"


def attempt(client, email="owner@example.com", password="wrong password", address=None):
    environ = {"REMOTE_ADDR": address} if address else {}
    return post_form(client, "/login", {"email": email, "password": password}, environ_base=environ)


def assert_locked(response, *words):
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= throttle.WINDOW_S
    html = response.get_data(as_text=True)
    message = re.search(r'id="locked-out">([^<]+)<', html).group(1)
    assert "Too many failed attempts" in message and "Try again in" in message
    for word in words:
        assert word in message
    return message


def test_the_account_locks_after_its_failures_and_refuses_even_the_right_password(client, owner):
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        assert attempt(client).status_code == 422
    # The failure that uses up the budget already says so.
    assert_locked(attempt(client), "for this account", "even with the right password")
    message = assert_locked(attempt(client, password=PASSWORD), "for this account", "even with the right password")
    assert "Try again in 15 minutes" in message
    assert client.get("/projects").status_code == 302
    # Another address does not get through either: the count is the account's.
    assert_locked(attempt(client.application.test_client(), password=PASSWORD, address="198.51.100.7"))
    # Other accounts from the same address still log in.
    other = client.application.test_client()
    from app.services import accounts
    accounts.create_user("grace@example.com", PASSWORD, "member")
    assert attempt(other, "grace@example.com", PASSWORD).status_code == 303


def test_the_account_count_ignores_case_and_covers_unknown_emails(client, owner):
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        assert attempt(client, "nobody@example.com").status_code == 422
    assert_locked(attempt(client, "NOBODY@Example.com"))
    for email in ("Owner@Example.com", "owner@example.com", "OWNER@EXAMPLE.COM", "owner@example.com"):
        assert attempt(client, email).status_code == 422
    assert_locked(attempt(client, "Owner@example.COM"))
    assert_locked(attempt(client, "owner@example.com", PASSWORD))


def test_a_successful_log_in_clears_the_account_count(client, owner):
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        assert attempt(client).status_code == 422
    assert attempt(client, password=PASSWORD).status_code == 303
    post_form(client, "/logout")
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        assert attempt(client).status_code == 422


def test_the_address_locks_after_its_failures_across_accounts(client, owner):
    address = "203.0.113.9"
    for n in range(throttle.ADDRESS_LIMIT - 1):
        assert attempt(client, f"guess{n}@example.com", address=address).status_code == 422
    assert_locked(attempt(client, "guess-last@example.com", address=address), "from your network address")
    assert_locked(attempt(client, password=PASSWORD, address=address), "from your network address",
                  "even with the right password")
    # Another address is not held back.
    assert attempt(client.application.test_client(), password=PASSWORD, address="203.0.113.10").status_code == 303


def test_counts_are_shared_through_redis_by_every_process(app, client, owner, settings):
    """A second app (another gunicorn worker) sees the first one's failures."""
    from app.factory import create_app

    for _ in range(throttle.ACCOUNT_LIMIT):
        attempt(client)
    other_process = create_app(settings)
    with other_process.app_context():
        assert_locked(attempt(other_process.test_client(), password=PASSWORD))


def test_proxy_count_takes_the_client_address_from_x_forwarded_for(app, settings, owner):
    from app.factory import create_app

    behind_proxy = create_app({**settings, "KIKET_PROXY_COUNT": 1})
    with behind_proxy.app_context():
        browser = behind_proxy.test_client()
        for n in range(throttle.ADDRESS_LIMIT):
            response = post_form(browser, "/login", {"email": f"guess{n}@example.com", "password": "wrong password"},
                                 headers={"X-Forwarded-For": "192.0.2.1"})
        assert response.status_code == 429
        fresh = post_form(browser, "/login", {"email": "owner@example.com", "password": PASSWORD},
                          headers={"X-Forwarded-For": "192.0.2.2"})
        assert fresh.status_code == 303
    # Without a trusted proxy the header is ignored: the socket's address (the proxy's) is the one counted.
    direct = app.test_client()
    for n in range(throttle.ADDRESS_LIMIT):
        response = post_form(direct, "/login", {"email": f"other{n}@example.com", "password": "wrong password"},
                             headers={"X-Forwarded-For": f"192.0.2.{100 + n}"})
    assert response.status_code == 429


def test_proxy_count_setting_is_checked():
    from app.config import SettingsError, load_settings

    assert load_settings({}, "/tmp")["KIKET_PROXY_COUNT"] == 0
    assert load_settings({"KIKET_PROXY_COUNT": "2"}, "/tmp")["KIKET_PROXY_COUNT"] == 2
    for junk in ("-1", "one"):
        try:
            load_settings({"KIKET_PROXY_COUNT": junk}, "/tmp")
        except SettingsError as error:
            assert "KIKET_PROXY_COUNT" in str(error)
        else:
            raise AssertionError(f"KIKET_PROXY_COUNT={junk} accepted")


def invitation_link(client, email) -> str:
    response = post_form(client, "/admin/invitations", {"email": email, "role": "member"}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    start = html.index("http://localhost/join/")
    return html[start:html.index('"', start)].removeprefix("http://localhost")


def test_invitation_acceptance_locks_after_wrong_emails(app, client, owner, login):
    login()
    link = invitation_link(client, "grace@example.com")
    stranger = app.test_client()
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        wrong = post_form(stranger, link, {"email": "mallory@example.com", "password": PASSWORD})
        assert wrong.status_code == 422
    assert_locked(post_form(stranger, link, {"email": "mallory@example.com", "password": PASSWORD}),
                  "for this invitation")
    # The right email is refused too during the lockout, from any address.
    assert_locked(post_form(app.test_client(), link, {"email": "grace@example.com", "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "198.51.100.20"}), "even with the right email address")
    # A password that breaks the rules is not a guess: it does not count.
    app.extensions["redis"].flushdb()
    for _ in range(throttle.ACCOUNT_LIMIT + 1):
        assert post_form(stranger, link, {"email": "grace@example.com", "password": "short"}).status_code == 422
    assert post_form(stranger, link, {"email": "grace@example.com", "password": PASSWORD}).status_code == 303


def test_invalid_invitation_links_count_against_the_address(app, client, owner, login):
    login()
    link = invitation_link(client, "grace@example.com")
    guesser = app.test_client()
    address = {"REMOTE_ADDR": "198.51.100.30"}
    for n in range(throttle.ADDRESS_LIMIT - 1):
        assert guesser.get(f"/join/not-a-token-{n}", environ_base=address).status_code == 410
    assert_locked(guesser.get("/join/not-a-token-last", environ_base=address), "from your network address")
    assert_locked(guesser.get(link, environ_base=address))
    # Someone else, elsewhere, opens the real link.
    assert app.test_client().get(link, environ_base={"REMOTE_ADDR": "198.51.100.31"}).status_code == 200


def test_log_in_still_works_when_redis_is_unreachable(settings, app, owner):
    from app.factory import create_app

    no_redis = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with no_redis.app_context():
        browser = no_redis.test_client()
        assert attempt(browser).status_code == 422
        assert attempt(browser, password=PASSWORD).status_code == 303


def test_an_ipv6_client_counts_as_its_64():
    assert throttle.client_network("2001:db8:1:2:aaaa::1") == throttle.client_network("2001:db8:1:2:bbbb::7") \
        == "2001:db8:1:2::/64"
    assert throttle.client_network("2001:db8:1:3::1") != throttle.client_network("2001:db8:1:2::1")
    assert throttle.client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle.client_network("198.51.100.7") == "198.51.100.7"


def test_failures_from_one_ipv6_64_add_up(client, owner):
    for n in range(throttle.ADDRESS_LIMIT - 1):
        assert attempt(client, f"guess{n}@example.com", address=f"2001:db8:0:1::{n + 1:x}").status_code == 422
    assert_locked(attempt(client, "last@example.com", address="2001:db8:0:1:ffff::1"), "from your network address")
    assert attempt(client, password=PASSWORD, address="2001:db8:0:2::1").status_code == 303
