"""WEBMAIL_IMAP_SEND_CLIENT_ADDRESS: each browser's address goes to a server that trusts Webmail's.

Webmail reaches the mail server from one address for all its users, so a stock Dovecot logs
that address for everyone and, after a rejected password, delays everyone's next sign-in. A
Dovecot told to trust Webmail's address (login_trusted_networks) takes the browser's address
from IMAP ID instead. These tests change exactly that setting on a real Dovecot.
"""

import time

import pytest
from django.test import Client

from devtools.dovecot import Dovecot
from tests.conftest import APP_PASSWORD, _connect_from_test_addresses, make_user
from webmail.pool import pool

COLLEAGUE_BROWSER = "198.51.100.7"
MY_BROWSER = "203.0.113.9"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    """A Dovecot as shipped but for trusting Webmail's (loopback) address."""
    # login_trusted_networks changed from its default (none) because it is what these test.
    server = Dovecot(tmp_path_factory.mktemp("trusting")).start(trusted_networks="127.0.0.0/8")
    _connect_from_test_addresses(server.port, server.starttls_port)
    try:
        yield server
    finally:
        server.stop()


def sign_in(client, password, browser):
    started = time.monotonic()
    response = client.post("/webmail/sign-in/", {"password": password}, REMOTE_ADDR=browser)
    return response, time.monotonic() - started


def sign_in_logged(server, email, action):
    """Run `action` and return the line the server logged for `email`'s sign-in meanwhile."""
    logged = server.log_file.stat().st_size
    action()
    deadline = time.monotonic() + 5  # Dovecot's log process writes a moment later
    while True:
        with server.log_file.open() as log:
            log.seek(logged)
            lines = [line for line in log if f"Login: user=<{email}>" in line]
        if lines or time.monotonic() > deadline:
            [line] = lines
            return line
        time.sleep(0.05)


@pytest.mark.parametrize("sends", [True, False], ids=["sent", "not sent"])
def test_a_colleagues_rejected_password_slows_only_their_browser(
    user_client, user, django_user_model, dovecot, imap_settings, sends
):
    imap_settings.WEBMAIL_IMAP_SEND_CLIENT_ADDRESS = sends
    colleague = make_user(django_user_model, f"carol{int(sends)}")
    dovecot.add_user(user.email, APP_PASSWORD)
    dovecot.add_user(colleague.email, APP_PASSWORD)
    colleague_client = Client()
    colleague_client.force_login(colleague)
    refused, _ = sign_in(colleague_client, "typo", COLLEAGUE_BROWSER)
    assert "The mail server rejected the password" in refused.content.decode()

    response, seconds = sign_in(user_client, APP_PASSWORD, MY_BROWSER)

    assert response.status_code == 302
    if sends:
        assert seconds < 3  # Dovecot's 4 s delay after the colleague's typo is theirs alone
    else:
        assert seconds > 3  # one address for everyone: the colleague's delay is mine too


def test_the_mail_servers_log_names_the_browser(user_client, user, dovecot, imap_settings):
    imap_settings.WEBMAIL_IMAP_SEND_CLIENT_ADDRESS = True
    dovecot.add_user(user.email, APP_PASSWORD)

    login = sign_in_logged(
        dovecot, user.email, lambda: sign_in(user_client, APP_PASSWORD, MY_BROWSER)
    )

    assert f"rip={MY_BROWSER}" in login


def test_a_server_that_does_not_trust_webmail_ignores_the_address(
    user_client, user, stock_dovecot, settings, sent
):
    settings.WEBMAIL_IMAP_HOST = stock_dovecot.host
    settings.WEBMAIL_IMAP_PORT = stock_dovecot.port
    settings.WEBMAIL_IMAP_CA_FILE = str(stock_dovecot.ca_file)
    settings.WEBMAIL_IMAP_SEND_CLIENT_ADDRESS = True
    stock_dovecot.add_user(user.email, APP_PASSWORD)

    try:
        login = sign_in_logged(
            stock_dovecot, user.email, lambda: sign_in(user_client, APP_PASSWORD, MY_BROWSER)
        )
    finally:
        pool.close_all()

    assert any(f'"x-originating-ip" "{MY_BROWSER}"' in command for command in sent), sent
    assert f"rip={MY_BROWSER}" not in login and "rip=127." in login


@pytest.mark.parametrize("forwarded", ["not-an-address", "203.0.113.9:51234", "é" * 20])
def test_a_forwarded_address_that_is_no_address_is_not_sent(
    user_client, user, dovecot, imap_settings, forwarded, sent
):
    # A proxy set up to pass X-Forwarded-For through lets the browser write anything there.
    imap_settings.WEBMAIL_IMAP_SEND_CLIENT_ADDRESS = True
    imap_settings.TRUSTED_PROXY_COUNT = 1
    dovecot.add_user(user.email, APP_PASSWORD)

    def sign_in_through_the_proxy():
        response = user_client.post(
            "/webmail/sign-in/", {"password": APP_PASSWORD}, HTTP_X_FORWARDED_FOR=forwarded
        )
        assert response.status_code == 302

    login = sign_in_logged(dovecot, user.email, sign_in_through_the_proxy)

    assert not any(command.startswith("ID") for command in sent), sent
    assert "rip=127." in login
