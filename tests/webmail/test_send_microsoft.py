"""Sending with a connected Microsoft 365 account: AUTH XOAUTH2 with the access token Webmail's
IMAP signs in with, through a real Postfix whose SASL goes to the Dovecot that takes only the
stand-in identity provider's tokens (and refuses every password)."""

import logging
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from settings_app.models import AuditEvent, Profile
from tests import conftest
from tests.conftest import APP_PASSWORD
from tests.webmail.fake_smtp import FakeSmtpServer
from tests.webmail.sending import alert, arrived, form, stored
from webmail.models import SignInFailure, Submission

CONNECT = "/settings/microsoft/connect/"


@pytest.fixture
def microsoft_smtp(microsoft_settings, oauth_postfix):
    """Sending through the Postfix that signs in with the OAuth Dovecot."""
    microsoft_settings.WEBMAIL_SMTP_HOST = oauth_postfix.host
    microsoft_settings.WEBMAIL_SMTP_PORT = oauth_postfix.port
    microsoft_settings.WEBMAIL_SMTP_SECURITY = "starttls"
    microsoft_settings.WEBMAIL_SMTP_CA_FILE = str(oauth_postfix.ca_file)
    microsoft_settings.WEBMAIL_SMTP_TIMEOUT = 5
    microsoft_settings.WEBMAIL_SENT_COPY = "auto"
    return microsoft_settings


@pytest.fixture
def dave(oauth_dovecot) -> conftest.TestMailbox:
    """Another mailbox on the same server, to write to."""
    email = f"dave-{next(conftest._mailbox_numbers)}@practice.example"
    return conftest.TestMailbox(email, oauth_dovecot.add_user(email, APP_PASSWORD), oauth_dovecot)


@pytest.fixture
def carol(client, microsoft_user, identity_provider, oauth_postfix, microsoft_smtp, dave):
    """Carol signed in to the app and her Microsoft 365 account connected (Automatic)."""
    oauth_postfix.sync_mailboxes()
    client.force_login(microsoft_user)
    response = client.post(CONNECT)
    assert response.status_code == 302, response.content
    back = urlsplit(identity_provider.approve(response["Location"]))
    client.get(f"{back.path}?{back.query}")
    assert Profile.objects.get(user=microsoft_user).microsoft_status == "connected"
    return client


def carols_mailbox(user, oauth_dovecot) -> conftest.TestMailbox:
    return conftest.TestMailbox(user.email, oauth_dovecot.maildir(user.email), oauth_dovecot)


def send(client, to, **fields):
    data = form(
        **{
            "to": to,
            "subject": "Bericht für Herrn Müller",
            "body": "Text I must not lose.",
            "attachments": [SimpleUploadedFile("bericht.pdf", b"%PDF report", "application/pdf")],
            **fields,
        }
    )
    return client.post("/webmail/compose/", data)


def access_token(user) -> str:
    return Profile.objects.get(user=user).get_microsoft_tokens()["access_token"]


def test_it_sends_with_the_microsoft_account_and_the_message_arrives(
    carol, microsoft_user, dave, oauth_dovecot, oauth_postfix
):
    logged = oauth_postfix.log_size()
    response = send(carol, dave.email)
    assert response.status_code == 302, alert(response)
    [received] = arrived(dave.maildir)
    assert received["Subject"] == "Bericht für Herrn Müller"
    assert received["From"].addresses[0].addr_spec == microsoft_user.email
    [attachment] = received.iter_attachments()
    assert attachment.get_payload(decode=True) == b"%PDF report"
    # Signed in with the token, as the account Webmail reads with (no password exists here).
    log = oauth_postfix.log_since(logged).decode()
    assert f"sasl_method=XOAUTH2, sasl_username={microsoft_user.email}" in log
    [copy] = stored(carols_mailbox(microsoft_user, oauth_dovecot).maildir, "Sent")
    assert copy["Message-ID"] == received["Message-ID"]
    assert Submission.objects.get().state == Submission.State.SENT


def test_it_gets_a_fresh_token_after_the_mail_server_refused_one(
    carol, microsoft_user, identity_provider, dave
):
    assert carol.get("/webmail/").status_code == 200  # Webmail is open: its IMAP connection stays
    identity_provider.expire_access_tokens()
    # The saved token still looks fresh to Webmail, so the mail server is the first to refuse.
    response = send(carol, dave.email)
    assert response.status_code == 200
    assert "Send again" in response.content.decode()
    assert identity_provider.token_requests == ["authorization_code"]

    again = send(carol, dave.email)
    assert again.status_code == 302, alert(again)
    assert identity_provider.token_requests == ["authorization_code", "refresh_token"]
    assert len(arrived(dave.maildir)) == 1


def test_a_revoked_grant_keeps_the_draft_and_asks_to_reconnect(
    carol, microsoft_user, identity_provider, dave, oauth_dovecot
):
    assert carol.get("/webmail/").status_code == 200  # Webmail is open: its IMAP connection stays
    identity_provider.revoke(microsoft_user.email)

    response = send(carol, dave.email)
    page = response.content.decode()
    assert response.status_code == 200, alert(response)
    assert "was not accepted for sending" in page
    assert "connect your Microsoft 365 account again in Settings" in page
    assert "password" not in alert(response).lower()
    assert "Text I must not lose." in page and "Bericht für Herrn Müller" in page
    assert "Your message is kept in Drafts." in page
    assert "bericht.pdf" in page  # listed as kept with the draft
    [draft] = stored(carols_mailbox(microsoft_user, oauth_dovecot).maildir, "Drafts")
    assert draft["Subject"] == "Bericht für Herrn Müller"
    [attachment] = draft.iter_attachments()
    assert attachment.get_payload(decode=True) == b"%PDF report"
    assert Submission.objects.get().state == Submission.State.FAILED

    # Sending again asks Microsoft for a fresh token, learns the grant is gone, and says so.
    again = send(carol, dave.email)
    page = again.content.decode()
    assert again.status_code == 200, alert(again)
    assert "stopped accepting your connection" in page
    assert "connect your Microsoft 365 account again in Settings" in page
    assert "Text I must not lose." in page
    assert "Needs reconnecting (since" in carol.get("/settings/").content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MICROSOFT_FAILED).exists()
    # Not a rejected password: nothing counts toward the sign-in limit.
    assert SignInFailure.objects.count() == 0
    assert Profile.objects.get(user=microsoft_user).email_password_rejected_at is None
    assert arrived(dave.maildir, timeout=1) == []


def test_it_keeps_the_form_and_asks_to_connect_when_the_account_is_not_connected(
    client, microsoft_user, microsoft_smtp, dave
):
    client.force_login(microsoft_user)
    response = send(client, dave.email)
    page = response.content.decode()
    assert response.status_code == 200, alert(response)
    assert "Connect your Microsoft 365 account in Settings" in page
    assert "Text I must not lose." in page
    assert "it is still in this form" in page


# Answers Postfix cannot give on cue (through Dovecot it answers every failed XOAUTH2 with 535),
# but Exchange Online does: from a server that answers on cue.
@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        (
            "454 4.7.0 Temporary authentication failure",
            "could not check your Microsoft 365 sign-in just now. Try again in a few minutes.",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
            "the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
            "ask your IT administrator to allow authenticated SMTP for your mailbox",
        ),
    ],
)
def test_it_explains_refusals_of_the_token_that_reconnecting_would_not_fix(
    carol,
    microsoft_user,
    identity_provider,
    dave,
    oauth_dovecot,
    oauth_postfix,
    microsoft_smtp,
    refusal,
    said,
):
    assert carol.get("/webmail/").status_code == 200
    with FakeSmtpServer(oauth_dovecot.root / "tls", auth_reply=refusal) as fake:
        microsoft_smtp.WEBMAIL_SMTP_PORT = fake.port
        microsoft_smtp.WEBMAIL_SMTP_CA_FILE = str(oauth_dovecot.ca_file)
        response = send(carol, dave.email)
    assert any(line.startswith("AUTH XOAUTH2 ") for line in fake.lines)
    page = response.content.decode()
    assert response.status_code == 200, alert(response)
    assert said in page
    assert "connect your Microsoft 365 account again" not in page
    assert "password" not in alert(response).lower()
    assert len(stored(carols_mailbox(microsoft_user, oauth_dovecot).maildir, "Drafts")) == 1
    # Nothing wrong with the token: it is kept, and sending works once the server takes it.
    microsoft_smtp.WEBMAIL_SMTP_PORT = oauth_postfix.port
    microsoft_smtp.WEBMAIL_SMTP_CA_FILE = str(oauth_postfix.ca_file)
    again = send(carol, dave.email)
    assert again.status_code == 302, alert(again)
    assert identity_provider.token_requests == ["authorization_code"]


def test_the_token_never_appears_in_pages_logs_or_records(
    carol, microsoft_user, identity_provider, dave, caplog
):
    caplog.set_level(logging.DEBUG)
    token = access_token(microsoft_user)
    pages = [send(carol, dave.email, subject="First")]
    identity_provider.revoke(microsoft_user.email)
    pages.append(send(carol, dave.email, subject="Refused"))
    pages.append(send(carol, dave.email, subject="Reconnect"))
    assert "Sending failed" in caplog.text  # the failures were logged, without the token
    for response in pages:
        assert token not in response.content.decode()
        assert token not in str(response.headers)
    assert token not in caplog.text
    assert token not in str(dict(carol.session))
    for model in (Submission, AuditEvent):
        assert token not in str(list(model.objects.values()))
