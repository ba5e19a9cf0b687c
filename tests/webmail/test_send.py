"""Sending from Webmail through a real Postfix into the test Dovecot."""

import time

from django.core.files.uploadedfile import SimpleUploadedFile

from settings_app.models import AuditEvent
from tests.webmail.sending import alert, arrived, form, stored
from webmail.models import Submission

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
CSV = "Name;Betrag\nMüller;12,50\n".encode()


def test_it_delivers_a_message_with_a_non_ascii_subject_and_two_attachments_intact(
    sender_client, automatic_user, recipient, mailbox
):
    bob, bob_mailbox = recipient
    response = sender_client.post(
        "/webmail/compose/",
        form(
            to=f"Bob Empfänger <{bob.email}>",
            subject="Grüße – Ihre Unterlagen",
            body="Guten Tag,\nanbei die Unterlagen.\n",
            attachments=[
                SimpleUploadedFile("Übersicht 2026.pdf", PDF, "application/pdf"),
                SimpleUploadedFile("zahlen.csv", CSV, "text/csv"),
            ],
        ),
    )
    assert response.status_code == 302, alert(response)
    [received] = arrived(bob_mailbox.maildir)
    assert received["Subject"] == "Grüße – Ihre Unterlagen"
    assert received["From"].addresses[0].addr_spec == automatic_user.email
    assert received["From"].addresses[0].display_name == automatic_user.get_full_name()
    assert received["To"].addresses[0].display_name == "Bob Empfänger"
    assert received["Message-ID"] and received["Date"]
    assert received.get_body(("plain",)).get_content() == "Guten Tag,\nanbei die Unterlagen.\n"
    attachments = {
        part.get_filename(): part.get_payload(decode=True) for part in received.iter_attachments()
    }
    assert attachments == {"Übersicht 2026.pdf": PDF, "zahlen.csv": CSV}
    [copy] = stored(mailbox.maildir, "Sent")
    assert copy["Message-ID"] == received["Message-ID"]


def test_it_records_each_send_in_the_audit_trail_without_the_content(
    sender_client, automatic_user, recipient
):
    bob, _ = recipient
    response = sender_client.post("/webmail/compose/", form(to=bob.email, subject="Private matter"))
    assert response.status_code == 302, alert(response)
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.MAIL_SENT)
    assert event.subject == automatic_user
    assert event.detail == "1 recipient"
    assert "Private" not in str(vars(event))


def test_it_sends_once_when_the_form_is_submitted_twice(sender_client, recipient):
    bob, bob_mailbox = recipient
    data = form(to=bob.email, subject="Once only")
    first = sender_client.post("/webmail/compose/", data)
    second = sender_client.post("/webmail/compose/", data, follow=True)
    assert first.status_code == 302
    assert "already sent" in second.content.decode()
    time.sleep(1)
    assert len(arrived(bob_mailbox.maildir, count=2, timeout=2)) == 1
    assert Submission.objects.count() == 1


def test_it_refuses_a_header_with_a_line_break_and_sends_nothing(sender_client, recipient, mailbox):
    bob, bob_mailbox = recipient
    response = sender_client.post(
        "/webmail/compose/", form(to=bob.email, subject="Hello\r\nBcc: victim@example.org")
    )
    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert "Bcc: victim@example.org" in response.content.decode()  # what they wrote is kept
    assert arrived(bob_mailbox.maildir, timeout=1) == []
    assert not Submission.objects.exists()


def test_it_leaves_the_copy_in_sent_to_the_server_when_configured(
    sender_client, recipient, mailbox, settings
):
    settings.WEBMAIL_SENT_COPY = "server"
    bob, bob_mailbox = recipient
    response = sender_client.post("/webmail/compose/", form(to=bob.email, subject="No copy"))
    assert response.status_code == 302, alert(response)
    assert len(arrived(bob_mailbox.maildir)) == 1
    assert stored(mailbox.maildir, "Sent") == []


def test_it_takes_the_from_address_from_the_users_contact_email_only(
    sender_client, recipient, automatic_user
):
    bob, bob_mailbox = recipient
    data = form(to=bob.email, subject="Who am I", From="ceo@practice.example")
    sender_client.post("/webmail/compose/", data)
    [received] = arrived(bob_mailbox.maildir)
    assert received["From"].addresses[0].addr_spec == automatic_user.email
    assert received["Return-Path"] == f"<{automatic_user.email}>"


def test_it_keeps_bcc_in_the_copy_in_sent_only(sender_client, recipient, mailbox):
    bob, bob_mailbox = recipient
    response = sender_client.post(
        "/webmail/compose/", form(to=bob.email, bcc=mailbox.email, subject="Blind copy")
    )
    assert response.status_code == 302, alert(response)
    received = arrived(bob_mailbox.maildir)[0]
    assert "Bcc" not in received
    [copy] = stored(mailbox.maildir, "Sent")
    assert copy["Bcc"].addresses[0].addr_spec == mailbox.email
    assert copy["Message-ID"] == received["Message-ID"]
