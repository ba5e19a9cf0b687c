"""Production settings: check --deploy, security headers, CSP, request logs, health, lockouts."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from tests.conftest import APP_PASSWORD, USER_PASSWORD
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
