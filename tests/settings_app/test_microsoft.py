"""Connecting a Microsoft 365 account from Settings, against the stand-in identity provider."""

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core import serializers
from django.core.management import call_command
from django.db import connection as db_connection
from django.test import Client

from settings_app import crypto
from settings_app.models import AuditEvent, Profile
from tests.conftest import APP_PASSWORD, TEST_KEY
from webmail.imap import Mailbox, PasswordRejected, Server

CONNECT = "/settings/microsoft/connect/"
CALLBACK = "/settings/microsoft/callback/"


def start(client, **data):
    response = client.post(CONNECT, data)
    assert response.status_code == 302, response.content
    return response["Location"]


def finish(client, identity_provider, authorize_url, *, cancel=False):
    """Press Accept (or Cancel) on the stand-in's page and follow it back, as a browser does."""
    back = urlsplit(identity_provider.approve(authorize_url, cancel=cancel))
    return client.get(f"{back.path}?{back.query}", follow=True)


def connect(client, identity_provider, **data):
    return finish(client, identity_provider, start(client, **data))


@pytest.fixture
def carol_client(client, microsoft_user):
    client.force_login(microsoft_user)
    return client


def test_it_hides_microsoft_sign_in_when_not_configured(user_client, settings):
    settings.MICROSOFT_CLIENT_ID = ""
    assert "Email sign-in" not in user_client.get("/settings/edit/").content.decode()
    assert "Microsoft 365 account" not in user_client.get("/settings/").content.decode()
    assert user_client.post(CONNECT).status_code == 404


def test_it_shows_not_connected_with_a_connect_button(carol_client):
    page = carol_client.get("/settings/").content.decode()
    assert "Microsoft 365 account" in page
    assert "Not connected" in page
    assert 'action="/settings/microsoft/connect/"' in page


def test_it_sends_the_browser_to_the_authority_with_pkce_state_and_login_hint(
    carol_client, microsoft_user, identity_provider
):
    location = start(carol_client)
    assert location.startswith(identity_provider.authority + "/organizations/oauth2/v2.0/authorize")
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0]
    assert query["state"][0]
    assert query["login_hint"] == [microsoft_user.email]
    assert query["redirect_uri"] == ["http://testserver/settings/microsoft/callback/"]
    assert "IMAP.AccessAsUser.All" in query["scope"][0]
    assert "offline_access" in query["scope"][0]


def test_it_refuses_a_connect_without_csrf_token(microsoft_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(microsoft_user)
    assert client.post(CONNECT).status_code == 403
    assert client.get(CONNECT).status_code == 405


def test_it_connects_and_shows_connected_as(carol_client, microsoft_user, identity_provider):
    response = connect(carol_client, identity_provider)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/settings/"
    assert f"Connected as {microsoft_user.email}" in page
    assert "is connected" in page
    profile = Profile.objects.get(user=microsoft_user)
    assert profile.microsoft_status == Profile.MicrosoftStatus.CONNECTED
    assert identity_provider.token_requests == ["authorization_code"]
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert AuditEvent.Action.MICROSOFT_CONNECTED in actions


def test_it_refuses_a_wrong_state(carol_client, microsoft_user, identity_provider):
    location = start(carol_client)
    back = urlsplit(identity_provider.approve(location))
    forged = back.query.replace("state=", "state=forged")
    response = carol_client.get(f"{back.path}?{forged}")
    assert response.status_code == 400
    assert "did not start from this browser session" in response.content.decode()
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""


def test_it_refuses_a_reused_answer(carol_client, microsoft_user, identity_provider):
    location = start(carol_client)
    back = urlsplit(identity_provider.approve(location))
    assert carol_client.get(f"{back.path}?{back.query}").status_code == 302
    again = carol_client.get(f"{back.path}?{back.query}")
    assert again.status_code == 400
    assert "already used" in again.content.decode()


def test_it_refuses_an_answer_from_another_browser_session(
    carol_client, microsoft_user, identity_provider
):
    location = start(carol_client)
    back = urlsplit(identity_provider.approve(location))
    other = Client()
    other.force_login(microsoft_user)
    response = other.get(f"{back.path}?{back.query}")
    assert response.status_code == 400
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""


def test_it_says_plainly_when_the_user_cancelled(carol_client, microsoft_user, identity_provider):
    response = finish(carol_client, identity_provider, start(carol_client), cancel=True)
    assert response.status_code == 400
    assert "cancelled" in response.content.decode()
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""


def test_it_refuses_another_account_and_names_it(carol_client, microsoft_user, identity_provider):
    identity_provider.sign_in_as = "someone.else@practice.example"
    response = connect(carol_client, identity_provider)
    page = response.content.decode()
    assert response.status_code == 400
    assert "someone.else@practice.example" in page
    assert microsoft_user.email in page
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""


def test_it_answers_503_when_the_authority_is_down(carol_client, identity_provider):
    identity_provider.failing = 500
    response = carol_client.post(CONNECT)
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()


def test_it_disconnects(carol_client, microsoft_user, identity_provider):
    connect(carol_client, identity_provider)
    response = carol_client.post("/settings/microsoft/disconnect/", follow=True)
    assert "Not connected" in response.content.decode()
    profile = Profile.objects.get(user=microsoft_user)
    assert (profile.microsoft_token, profile.microsoft_account) == ("", "")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_DISCONNECTED).exists()


def test_it_lets_the_user_choose_microsoft_in_edit(user_client, user, microsoft_settings):
    response = user_client.post(
        "/settings/edit/",
        {
            "first_name": "Alice",
            "last_name": "Example",
            "email": user.email,
            "phone": "",
            "email_sign_in": "microsoft",
            "webmail_access": "automatic",
        },
        follow=True,
    )
    assert "Your settings were saved." in response.content.decode()
    profile = Profile.objects.get(user=user)
    assert profile.email_sign_in == "microsoft"
    assert profile.webmail_access == "automatic"  # no password needed with Microsoft
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_CHANGED).exists()


def secrets_of(identity_provider, user) -> list[str]:
    profile = Profile.objects.get(user=user)
    tokens = profile.get_microsoft_tokens()
    return [tokens["access_token"], tokens["refresh_token"]]


def test_it_keeps_tokens_only_encrypted(carol_client, microsoft_user, identity_provider, caplog):
    caplog.set_level(logging.DEBUG)
    response = connect(carol_client, identity_provider)
    secrets = secrets_of(identity_provider, microsoft_user)
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT microsoft_token FROM settings_app_profile WHERE user_id = %s",
            [microsoft_user.pk],
        )
        (raw,) = cursor.fetchone()
    session = carol_client.session
    dumped = serializers.serialize("json", Profile.objects.all())
    places = {
        "database": raw,
        "page": response.content.decode(),
        "log": caplog.text,
        "session": json.dumps(dict(session.items())),
        "dumpdata": dumped,
    }
    for secret in secrets:
        for where, text in places.items():
            assert secret not in text, f"a token is readable in the {where}"
    # A copied token does not decrypt for another user.
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(raw, owner=f"microsoft:{microsoft_user.pk + 1}")


def test_it_keeps_tokens_readable_through_key_rotation(
    carol_client, microsoft_user, identity_provider, settings
):
    connect(carol_client, identity_provider)
    before = secrets_of(identity_provider, microsoft_user)
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, TEST_KEY]
    call_command("rotate_encryption_keys", verbosity=0)
    settings.ENCRYPTION_KEYS = [new_key]
    assert secrets_of(identity_provider, microsoft_user) == before
    profile = Profile.objects.get(user=microsoft_user)
    assert profile.microsoft_status == Profile.MicrosoftStatus.CONNECTED
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_ROTATED).exists()


def test_the_stand_in_refuses_a_password_login_like_exchange(microsoft_user, microsoft_settings):
    with pytest.raises(PasswordRejected):
        Mailbox(Server.from_settings()).sign_in(microsoft_user.email, APP_PASSWORD)


def test_only_pages_with_the_connect_button_may_send_forms_to_the_authority(
    carol_client, identity_provider
):
    policy = carol_client.get("/settings/")["Content-Security-Policy"]
    assert f"form-action 'self' {identity_provider.authority}" in policy
    assert (
        identity_provider.authority
        not in carol_client.get("/settings/edit/")["Content-Security-Policy"]
    )


def test_changing_the_email_address_forgets_the_connection(
    carol_client, microsoft_user, identity_provider
):
    connect(carol_client, identity_provider)
    response = carol_client.post(
        "/settings/edit/",
        {
            "first_name": "Carol",
            "last_name": "Example",
            "email": "carol.new@practice.example",
            "phone": "",
            "email_sign_in": "microsoft",
            "webmail_access": "automatic",
        },
        follow=True,
    )
    assert "Not connected" in response.content.decode()
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_DISCONNECTED).get()
    assert "email address changed" in event.detail
