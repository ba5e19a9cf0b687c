"""Webmail with a connected Microsoft 365 account: XOAUTH2 against a Dovecot that refuses
passwords, with tokens from the stand-in identity provider."""

import base64
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client

from settings_app.models import AuditEvent, Profile
from webmail.models import SignInFailure
from webmail.pool import pool

CONNECT = "/settings/microsoft/connect/"


def connect(client, identity_provider, **data):
    response = client.post(CONNECT, data)
    assert response.status_code == 302, response.content
    back = urlsplit(identity_provider.approve(response["Location"]))
    return client.get(f"{back.path}?{back.query}", follow=True)


@pytest.fixture
def carol_client(client, microsoft_user):
    client.force_login(microsoft_user)
    return client


@pytest.fixture
def connected(carol_client, identity_provider):
    connect(carol_client, identity_provider)
    return carol_client


def test_it_opens_the_inbox_with_no_prompt_once_connected(connected):
    response = connected.get("/webmail/")
    assert response.status_code == 200
    assert "Quarterly review" in response.content.decode()


def test_it_asks_to_connect_when_not_connected(carol_client):
    response = carol_client.get("/webmail/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Connect your Microsoft 365 account" in page
    assert 'type="password"' not in page


@pytest.fixture
def short_lived(carol_client, identity_provider):
    """Connected with access tokens that live 1 second: every page needs a refresh."""
    identity_provider.access_lifetime = 1
    connect(carol_client, identity_provider)
    return carol_client


def test_it_refreshes_an_expired_access_token_and_still_opens(
    short_lived, microsoft_user, identity_provider
):
    first = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()
    time.sleep(1.1)  # the mail server now refuses the first access token
    response = short_lived.get("/webmail/")
    assert response.status_code == 200
    assert "Quarterly review" in response.content.decode()
    assert identity_provider.token_requests == ["authorization_code", "refresh_token"]
    after = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()
    assert after["refresh_token"] != first["refresh_token"]  # the newest is kept...
    assert after["access_token"] != first["access_token"]
    pool.close_all()
    time.sleep(1.1)
    assert short_lived.get("/webmail/").status_code == 200  # ...and works for the next refresh
    assert identity_provider.token_requests[-1] == "refresh_token"


def test_it_refreshes_a_little_before_expiry(carol_client, microsoft_user, identity_provider):
    identity_provider.access_lifetime = 200  # inside the margin of 5 minutes
    connect(carol_client, identity_provider)
    assert carol_client.get("/webmail/").status_code == 200
    assert identity_provider.token_requests == ["authorization_code", "refresh_token"]


def test_a_revoked_grant_needs_reconnecting_and_reconnecting_fixes_it(
    short_lived, microsoft_user, identity_provider
):
    identity_provider.revoke(microsoft_user.email)
    response = short_lived.get("/webmail/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "needs reconnecting" in page
    assert "stopped accepting your connection" in page
    assert SignInFailure.objects.count() == 0  # not a rejected password, not counted
    profile = Profile.objects.get(user=microsoft_user)
    assert profile.email_password_rejected_at is None
    assert profile.microsoft_status == Profile.MicrosoftStatus.NEEDS_RECONNECTING
    assert "Needs reconnecting (since" in short_lived.get("/settings/").content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_FAILED).exists()
    # Webmail does not keep asking Microsoft with a grant it knows is gone.
    asked = len(identity_provider.token_requests)
    short_lived.get("/webmail/")
    assert len(identity_provider.token_requests) == asked

    identity_provider.access_lifetime = 3600
    connect(short_lived, identity_provider)
    assert "Quarterly review" in short_lived.get("/webmail/").content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_RECONNECTED).exists()


def test_it_answers_503_within_the_timeout_when_the_authority_is_down(
    short_lived, microsoft_user, identity_provider, microsoft_settings
):
    identity_provider.failing = 500
    started = time.monotonic()
    response = short_lived.get("/webmail/")
    assert time.monotonic() - started < microsoft_settings.MICROSOFT_TIMEOUT + 1
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()
    profile = Profile.objects.get(user=microsoft_user)
    assert profile.microsoft_status == Profile.MicrosoftStatus.CONNECTED  # nothing was lost
    identity_provider.failing = None
    assert short_lived.get("/webmail/").status_code == 200


def test_it_answers_504_within_the_timeout_when_the_authority_hangs(
    short_lived, identity_provider, microsoft_settings
):
    microsoft_settings.MICROSOFT_TIMEOUT = 1
    identity_provider.delay = 3
    started = time.monotonic()
    response = short_lived.get("/webmail/")
    assert time.monotonic() - started < 2
    assert response.status_code == 504
    assert "did not answer" in response.content.decode()


def test_manual_asks_each_browser_session_to_sign_in(
    carol_client, microsoft_user, identity_provider
):
    Profile.objects.filter(user=microsoft_user).update(webmail_access="manual")
    first = carol_client.get("/webmail/")
    assert "Sign in with Microsoft" in first.content.decode()
    response = connect(carol_client, identity_provider, purpose="session", next="/webmail/")
    assert response.redirect_chain[-1][0] == "/webmail/"
    assert "Quarterly review" in response.content.decode()
    # Nothing is kept in the profile: the sign-in lives in this session only.
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""
    other = Client()
    other.force_login(microsoft_user)
    assert "Sign in with Microsoft" in other.get("/webmail/").content.decode()
    # Leaving Webmail forgets it.
    carol_client.post("/webmail/sign-out/")
    assert "Sign in with Microsoft" in carol_client.get("/webmail/").content.decode()


def test_the_pool_key_keeps_the_token_out(connected, microsoft_user):
    connected.get("/webmail/")
    token = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()["access_token"]
    keys = list(pool._idle)
    assert keys
    assert all(token not in repr(key) for key in keys)


def test_a_manual_sign_in_stays_readable_through_key_rotation(
    carol_client, microsoft_user, identity_provider, settings
):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from tests.conftest import TEST_KEY

    Profile.objects.filter(user=microsoft_user).update(webmail_access="manual")
    connect(carol_client, identity_provider, purpose="session", next="/webmail/")
    pool.close_all()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, TEST_KEY]
    call_command("rotate_encryption_keys", verbosity=0)
    settings.ENCRYPTION_KEYS = [new_key]
    assert "Quarterly review" in carol_client.get("/webmail/").content.decode()


def test_the_token_stays_out_of_the_imap_command_log(microsoft_user, identity_provider):
    from webmail.imap import Mailbox, Server

    client = Client()
    client.force_login(microsoft_user)
    connect(client, identity_provider)
    token = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()["access_token"]
    mailbox = Mailbox(Server.from_settings()).sign_in_oauth2(microsoft_user.email, token)
    try:
        logged = repr(getattr(mailbox._client._imap, "_cmd_log", {}))
        sasl = base64.b64encode(
            f"user={microsoft_user.email}\x01auth=Bearer {token}\x01\x01".encode()
        )
        assert token not in logged
        assert sasl.decode()[:40] not in logged
    finally:
        mailbox.close()


def test_the_help_page_explains_both_ways(client):
    page = client.get("/help/email-password/").content.decode()
    assert "connect your Microsoft account" in page
    assert "use an app" in page


def test_a_manual_sign_in_refreshes_within_its_session(
    carol_client, microsoft_user, identity_provider
):
    Profile.objects.filter(user=microsoft_user).update(webmail_access="manual")
    identity_provider.access_lifetime = 1
    connect(carol_client, identity_provider, purpose="session", next="/webmail/")
    pool.close_all()
    time.sleep(1.1)
    assert "Quarterly review" in carol_client.get("/webmail/").content.decode()
    assert identity_provider.token_requests.count("refresh_token") >= 2
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""
