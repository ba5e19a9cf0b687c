"""Production settings: check --deploy, security headers, CSP, request logs, health, lockouts."""

import logging
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from devtools.certs import make_certificates
from tests.conftest import APP_PASSWORD, USER_PASSWORD
from tests.production.conftest import Browser, session_cookie
from tests.production.proxy import TlsProxy
from tests.settings_app.test_edit import form_data

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY": Fernet.generate_key().decode() * 2,
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "clientmanager.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_pages_carry_the_security_headers(user_client):
    response = user_client.get("/settings/", secure=True)

    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_every_page_has_a_strict_content_security_policy(user_client):
    for response in (user_client.get("/settings/"), Client().get("/accounts/login/")):
        policy = response["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["frame-ancestors"] == "'self'"
        assert "'unsafe-inline'" not in directives["script-src"]
        # Scripts only from the app itself, or inline with this response's nonce.
        assert re.fullmatch(r"'self'( 'nonce-[^']+')?", directives["script-src"])
        assert "http" not in policy  # no remote sources


def test_the_message_body_keeps_its_own_sandbox_policy(user_client, automatic_user):
    response = user_client.get("/webmail/message/58/body/")
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert "sandbox" in response["Content-Security-Policy"]


def test_cookies_are_secure_and_http_only(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": USER_PASSWORD})

    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"


def test_health_answers_without_sign_in(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_each_request_logs_one_line_with_its_id_and_no_secrets(user_client, user, caplog):
    caplog.set_level(logging.INFO, logger="clientmanager.requests")

    response = user_client.post(
        "/settings/edit/?note=private", form_data(user, email_password=APP_PASSWORD)
    )

    lines = [r for r in caplog.records if r.name == "clientmanager.requests"]
    assert len(lines) == 1
    line = lines[0].getMessage()
    assert line.startswith("POST /settings/edit/ 302 ")
    assert f"user={user.pk}" in line
    assert lines[0].request_id == response["X-Request-ID"]
    assert APP_PASSWORD not in caplog.text
    assert "private" not in caplog.text


def test_a_sensible_incoming_request_id_is_kept(client, db):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert response["X-Request-ID"] == "lb-1234abcd"
    odd = client.get("/healthz", headers={"X-Request-ID": "x\r\nSet-Cookie: a=b"})
    assert re.fullmatch(r"[0-9a-f]{32}", odd["X-Request-ID"])


def sign_in(client, password, address):
    return client.post(
        "/accounts/login/",
        {"username": "alice", "password": password},
        headers={"X-Forwarded-For": address},
        REMOTE_ADDR="10.0.0.2",
    )


@pytest.mark.parametrize("proxies", [1])
def test_repeated_wrong_passwords_lock_that_user_from_that_address(client, user, settings, proxies):
    settings.TRUSTED_PROXY_COUNT = proxies
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong", "203.0.113.7")

    locked = sign_in(client, USER_PASSWORD, "203.0.113.7")
    elsewhere = sign_in(Client(), USER_PASSWORD, "198.51.100.20")

    assert locked.status_code == 429
    assert "Sign-in is paused for this account" in locked.content.decode()
    assert elsewhere.status_code == 302  # another office's address is not locked


def test_a_forged_forwarded_address_does_not_escape_the_lockout(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # The client adds its own entries; the proxy appends the real address last.
        sign_in(client, "wrong", f"192.0.2.{attempt}, 203.0.113.7")

    locked = sign_in(client, USER_PASSWORD, "192.0.2.99, 203.0.113.7")

    assert locked.status_code == 429


@pytest.fixture
def behind_tls_proxy(serve, tmp_path):
    """gunicorn as production runs it behind a TLS-terminating proxy, and that proxy.

    gunicorn is told not to trust the proxy itself (FORWARDED_ALLOW_IPS elsewhere), so HTTPS
    is known to Django only by SECURE_PROXY_SSL_HEADER, the setting under test.
    """
    ca_file, cert_file, key_file = make_certificates(tmp_path / "tls")
    started = []

    def start(**env):
        app = serve(
            SECURE_SSL_REDIRECT="true",
            SESSION_COOKIE_SECURE="true",
            CSRF_COOKIE_SECURE="true",
            TRUSTED_PROXY_COUNT=1,
            FORWARDED_ALLOW_IPS="192.0.2.1",
            **env,
        )
        proxy = TlsProxy(app.port, cert_file, key_file, client_address="203.0.113.9").start()
        started.append(proxy)
        context = ssl.create_default_context(cafile=ca_file)
        return app, proxy, Browser(proxy.url, context=context)

    yield start
    for proxy in started:
        proxy.close()


def test_behind_a_tls_proxy_the_app_serves_https_without_redirecting(behind_tls_proxy, user):
    app, proxy, browser = behind_tls_proxy(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    browser.cookies.update([session_cookie(user).split("=", 1)])

    status, headers, page = browser.request("/settings/edit/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    saved, saved_headers, _ = browser.request(
        "/settings/edit/",
        {**form_data(user, phone="01234 567890"), "csrfmiddlewaretoken": token},
        headers={"Origin": proxy.url, "Referer": f"{proxy.url}/settings/edit/"},
    )
    direct, direct_headers, _ = Browser(app.url).request("/accounts/login/")
    app.stop()

    assert status == 200  # no redirect loop: the proxy's HTTPS is believed
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "csrftoken=" in headers["Set-Cookie"] and "Secure" in headers["Set-Cookie"]
    # CSRF checks the HTTPS origin, and passes.
    assert (saved, saved_headers["Location"]) == (302, "/settings/")
    # Plain HTTP straight to the app is sent to HTTPS.
    assert direct == 301
    assert direct_headers["Location"] == f"https://127.0.0.1:{app.port}/accounts/login/"
    # The client's address is the one the proxy saw, not the proxy's own.
    assert re.search(r"POST /settings/edit/ 302 .* ip=203\.0\.113\.9 ", app.log_file.read_text())


def test_behind_a_tls_proxy_without_the_header_setting_every_page_redirects(behind_tls_proxy, db):
    app, _, browser = behind_tls_proxy()

    status, headers, _ = browser.request("/accounts/login/")
    app.stop()

    assert status == 301  # what SECURE_PROXY_SSL_HEADER is there to prevent: a redirect loop
    assert headers["Location"].startswith("https://")
