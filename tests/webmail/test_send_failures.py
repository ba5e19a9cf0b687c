"""When sending fails, the user learns which failure and why, and loses nothing."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from devtools.dovecot import free_port
from tests.conftest import APP_PASSWORD
from tests.webmail.fake_smtp import FakeSmtpServer
from tests.webmail.sending import alert, arrived, form, stored
from webmail.models import Submission


def send_failing(client, bob, **fields):
    """Send a message with an attachment; expect the form back (not a redirect)."""
    data = form(
        **{
            "to": bob.email,
            "subject": "Bericht für Herrn Müller",
            "body": "Text I must not lose.",
            "attachments": [SimpleUploadedFile("bericht.pdf", b"%PDF report", "application/pdf")],
            **fields,
        }
    )
    response = client.post("/webmail/compose/", data)
    assert response.status_code == 200, alert(response)
    page = response.content.decode()
    assert "Text I must not lose." in page
    assert "Bericht für Herrn Müller" in page
    return response, page


def assert_kept_as_draft(mailbox):
    [draft] = stored(mailbox.maildir, "Drafts")
    assert draft["Subject"] == "Bericht für Herrn Müller"
    [attachment] = draft.iter_attachments()
    assert attachment.get_payload(decode=True) == b"%PDF report"


def fake_settings(settings, fake):
    settings.WEBMAIL_SMTP_PORT = fake.port
    settings.WEBMAIL_SMTP_CA_FILE = str(fake_tls_ca(settings))


def fake_tls_ca(settings):
    return settings.WEBMAIL_IMAP_CA_FILE  # the fake uses the test Dovecot's certificate


@pytest.fixture
def dovecot_tls(dovecot):
    return dovecot.root / "tls"


def test_it_keeps_the_message_when_the_server_is_down(sender_client, recipient, mailbox, settings):
    settings.WEBMAIL_SMTP_PORT = free_port()  # nothing listens: connection refused at once
    _, page = send_failing(sender_client, recipient[0])
    assert "cannot be reached" in page
    assert "kept in Drafts" in page
    assert "bericht.pdf" in page  # listed as kept on the server
    assert_kept_as_draft(mailbox)
    assert Submission.objects.get().state == Submission.State.FAILED


def test_it_says_when_the_server_does_not_answer_in_time(
    sender_client, recipient, mailbox, settings, dovecot_tls
):
    settings.WEBMAIL_SMTP_TIMEOUT = 1
    with FakeSmtpServer(dovecot_tls, silent=True) as fake:
        fake_settings(settings, fake)
        started = time.monotonic()
        _, page = send_failing(sender_client, recipient[0])
    assert time.monotonic() - started < 6
    assert "did not answer within 1 seconds" in page, page[page.find("notice-error") :][:600]
    assert_kept_as_draft(mailbox)


# With a 1 s timeout Dovecot's answer comes late: Postfix asks Dovecot, which as shipped
# answers a wrong password only after 2 s.
@pytest.mark.parametrize("timeout", [30, 1], ids=["answered in time", "answered after timeout"])
def test_it_says_a_refused_password_is_refused_for_sending(
    sender_client, recipient, mailbox, dovecot, settings, timeout
):
    settings.WEBMAIL_SMTP_TIMEOUT = timeout
    sender_client.get("/webmail/")  # Webmail is open (a pooled IMAP connection)
    dovecot.set_password(mailbox.email, "changed-elsewhere")
    try:
        _, page = send_failing(sender_client, recipient[0])
    finally:
        dovecot.set_password(mailbox.email, APP_PASSWORD)
    assert "did not accept your email password for sending" in page
    assert "did not answer" not in page
    assert_kept_as_draft(mailbox)


@pytest.mark.parametrize(
    "refusal",
    [
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
        "550 5.7.30 Basic authentication is not supported for Client Submission.",
    ],
)
def test_it_explains_that_microsoft_does_not_allow_a_password_here(
    sender_client, recipient, mailbox, settings, dovecot_tls, refusal
):
    with FakeSmtpServer(dovecot_tls, auth_reply=refusal) as fake:
        fake_settings(settings, fake)
        _, page = send_failing(sender_client, recipient[0])
    assert "does not allow sending mail with a password" in page
    assert "Connect your Microsoft account" in page
    assert "did not accept your email password" not in page
    assert_kept_as_draft(mailbox)


def test_it_explains_exchanges_sender_thread_limit(
    sender_client, recipient, mailbox, settings, dovecot_tls
):
    refusal = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
    with FakeSmtpServer(dovecot_tls, mail_reply=refusal) as fake:
        fake_settings(settings, fake)
        _, page = send_failing(sender_client, recipient[0])
    assert "too many messages at the same moment" in page
    assert_kept_as_draft(mailbox)


def test_it_says_nobody_got_it_when_every_recipient_is_refused(sender_client, recipient, mailbox):
    _, page = send_failing(sender_client, recipient[0], to="nobody@practice.example")
    assert "No recipient was accepted" in page
    assert "nobody@practice.example" in page
    assert_kept_as_draft(mailbox)


def test_it_names_exactly_who_did_not_get_a_partly_accepted_message(sender_client, recipient):
    bob, bob_mailbox = recipient
    response = sender_client.post(
        "/webmail/compose/",
        form(to=f"{bob.email}, nobody@practice.example", subject="Partly"),
        follow=True,
    )
    page = response.content.decode()
    assert "Sent to 1 recipient." in page
    assert "These recipients did not get it: nobody@practice.example" in page
    assert bob.email not in page.split("did not get it")[1].split("</")[0]
    [received] = arrived(bob_mailbox.maildir)
    assert received["Subject"] == "Partly"


def test_it_says_before_uploading_that_the_server_takes_no_message_this_large(
    sender_client, recipient, mailbox, postfix
):
    big = SimpleUploadedFile("scan.tif", b"\0" * 8 * 1024 * 1024, "image/tiff")
    log_before = postfix.log_size()
    response = sender_client.post(
        "/webmail/compose/", form(to=recipient[0].email, subject="Scan", attachments=[big])
    )
    page = response.content.decode()
    assert "The message is too large" in page
    assert "accepts at most 9.8 MB" in page
    # Refused from the advertised SIZE before MAIL: Postfix never received the message.
    time.sleep(0.5)
    log = postfix.log_since(log_before).decode()
    [session] = [line for line in log.splitlines() if "disconnect" in line]
    assert "auth=1" in session and "mail=" not in session
    [draft] = stored(mailbox.maildir, "Drafts")
    assert draft["Subject"] == "Scan"


def test_it_refuses_a_message_over_the_configured_size_before_anything(
    sender_client, recipient, settings
):
    settings.WEBMAIL_MAX_MESSAGE_BYTES = 100_000
    big = SimpleUploadedFile("scan.tif", b"\0" * 200_000, "image/tiff")
    response = sender_client.post(
        "/webmail/compose/", form(to=recipient[0].email, subject="Scan", attachments=[big])
    )
    assert response.status_code == 400
    assert "at most 0.1 MB can be sent" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_stops_at_the_recipients_per_hour_limit(sender_client, recipient, mailbox, settings):
    settings.WEBMAIL_SEND_RECIPIENTS_PER_HOUR = 2
    bob, bob_mailbox = recipient
    first = sender_client.post(
        "/webmail/compose/", form(to=f"{bob.email}, {mailbox.email}", subject="Two")
    )
    assert first.status_code == 302, alert(first)
    _, page = send_failing(sender_client, bob)
    assert "at most 2 recipients an hour" in page
    assert_kept_as_draft(mailbox)
    assert [m["Subject"] for m in arrived(bob_mailbox.maildir, count=2, timeout=2)] == ["Two"]


def test_it_waits_when_the_mailbox_is_already_sending_as_much_as_allowed(
    sender_client, recipient, mailbox, automatic_user, settings
):
    for number in range(settings.WEBMAIL_SMTP_MAX_CONNECTIONS_PER_MAILBOX):
        Submission.objects.create(
            user=automatic_user, token=f"other-{number}", mailbox=mailbox.email
        )
    _, page = send_failing(sender_client, recipient[0])
    assert "sending other messages at this moment" in page
    assert_kept_as_draft(mailbox)


def test_it_refuses_a_server_whose_certificate_it_cannot_verify(
    sender_client, recipient, mailbox, settings, dovecot
):
    settings.WEBMAIL_SMTP_CA_FILE = str(dovecot.ca_file)  # another CA than Postfix's
    _, page = send_failing(sender_client, recipient[0])
    assert "certificate of localhost could not be verified" in page
    assert_kept_as_draft(mailbox)


def test_it_never_signs_in_without_starttls(
    sender_client, recipient, mailbox, settings, dovecot_tls
):
    with FakeSmtpServer(dovecot_tls, starttls=False) as fake:
        fake_settings(settings, fake)
        _, page = send_failing(sender_client, recipient[0])
    assert "does not offer STARTTLS" in page
    assert "AUTH" not in fake.commands and "MAIL" not in fake.commands
    assert_kept_as_draft(mailbox)
