"""Drafts: saved with their attachments, resumed in the form, removed once sent."""

import re

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webmail.sending import alert, arrived, form, stored
from tests.webmail.test_answer import flags_of

SCAN = bytes(range(256)) * 100


def save_draft(client, **fields):
    data = form(action="draft", **fields)
    response = client.post("/webmail/compose/", data)
    assert response.status_code == 302, alert(response)
    return int(re.search(r"draft=(\d+)", response["Location"]).group(1))


def test_it_round_trips_a_draft_with_its_attachments(sender_client, recipient, mailbox):
    bob, _ = recipient
    uid = save_draft(
        sender_client,
        to=f"Bob Example <{bob.email}>",
        bcc="auditor@practice.example",
        subject="Entwurf: Jahresgespräch",
        body="First thoughts.\n",
        attachments=[SimpleUploadedFile("scan 1.png", SCAN, "image/png")],
    )
    [saved] = stored(mailbox.maildir, "Drafts")
    assert "\\Draft" in flags_of(mailbox.maildir / ".Drafts", "Jahresgespr")
    assert saved["Subject"] == "Entwurf: Jahresgespräch"

    response = sender_client.get(f"/webmail/compose/?draft={uid}")
    assert response.status_code == 200, alert(response)
    initial = response.context["form"].initial
    assert initial["to"] == f"Bob Example <{bob.email}>"
    assert initial["bcc"] == "auditor@practice.example"
    assert initial["subject"] == "Entwurf: Jahresgespräch"
    assert initial["body"] == "First thoughts.\n"
    [(part, kept)] = response.context["attachments"]
    assert part.filename == "scan 1.png" and kept


def test_it_replaces_the_earlier_version_when_saved_again(sender_client, mailbox):
    uid = save_draft(sender_client, subject="Version one", body="1")
    save_draft(sender_client, subject="Version two", body="2", draft_uid=uid)
    assert [m["Subject"] for m in stored(mailbox.maildir, "Drafts")] == ["Version two"]


def test_it_sends_a_resumed_draft_with_its_attachments_and_removes_it(
    sender_client, recipient, mailbox
):
    bob, bob_mailbox = recipient
    uid = save_draft(
        sender_client,
        to=bob.email,
        subject="From a draft",
        attachments=[SimpleUploadedFile("scan.png", SCAN, "image/png")],
    )
    [(part, _)] = sender_client.get(f"/webmail/compose/?draft={uid}").context["attachments"]
    response = sender_client.post(
        "/webmail/compose/",
        form(to=bob.email, subject="From a draft", body="Done.", draft_uid=uid, keep=[part.number]),
    )
    assert response.status_code == 302, alert(response)
    [received] = arrived(bob_mailbox.maildir)
    [attachment] = received.iter_attachments()
    assert attachment.get_payload(decode=True) == SCAN
    assert "Bcc" not in received
    assert stored(mailbox.maildir, "Drafts") == []
    assert [m["Subject"] for m in stored(mailbox.maildir, "Sent")] == ["From a draft"]


def test_it_offers_to_continue_a_draft_opened_from_drafts(sender_client, mailbox):
    uid = save_draft(sender_client, subject="Half done")
    page = sender_client.get(f"/webmail/message/{uid}/?folder=Drafts").content.decode()
    assert f"/webmail/compose/?draft={uid}" in page
    assert "Continue writing" in page
