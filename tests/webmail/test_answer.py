"""Reply, reply all and forward: recipients, subject, quoting, threading headers and flags."""

import secrets
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.conftest import user_with_mailbox
from tests.webmail.sending import alert, arrived

ORIGINAL_ID = "<quarterly-42@example.test>"
EARLIER_ID = "<earlier-41@example.test>"


def flags_of(maildir, message_id: str) -> set[str]:
    """The IMAP flags Dovecot keeps in a Maildir file name (keywords by their names)."""
    keywords = {}
    keyword_file = maildir / "dovecot-keywords"
    if keyword_file.exists():
        for line in keyword_file.read_text().splitlines():
            number, name = line.split(" ", 1)
            keywords[chr(ord("a") + int(number))] = name
    names = {"R": "\\Answered", "S": "\\Seen", "F": "\\Flagged", "D": "\\Draft"}
    for sub in ("cur", "new"):
        for path in (maildir / sub).iterdir():
            if message_id.encode() in path.read_bytes():
                letters = path.name.rpartition(":2,")[2]
                return {names.get(letter) or keywords.get(letter, letter) for letter in letters}
    raise AssertionError(f"{message_id} is not in {maildir}")


@pytest.fixture
def people(django_user_model, dovecot, automatic_user, mailbox, postfix, smtp_settings, client):
    """Bob wrote to Alice and Carol, with Dan in Cc; Alice (signed in) has it in her Inbox."""
    bob, bob_box = user_with_mailbox(django_user_model, dovecot, "bob")
    carol, carol_box = user_with_mailbox(django_user_model, dovecot, "carol")
    dan, dan_box = user_with_mailbox(django_user_model, dovecot, "dan")
    postfix.sync_mailboxes()
    original = EmailMessage(policy=SMTP)
    original["From"] = f"Bob Example <{bob.email}>"
    original["To"] = f"Alice Example <{automatic_user.email}>, {carol.email}"
    original["Cc"] = f"Dan Example <{dan.email}>"
    original["Subject"] = "RE: Quarterly review"
    original["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    original["Message-ID"] = ORIGINAL_ID
    original["References"] = EARLIER_ID
    original.set_content("Numbers attached.\nSee you Thursday.\n")
    mailbox.deliver(original.as_bytes())
    client.force_login(automatic_user)
    return {"bob": bob_box, "carol": carol_box, "dan": dan_box, "client": client}


def open_form(client, kind: str, uid: int):
    response = client.get(f"/webmail/message/{uid}/{kind}/?folder=INBOX")
    assert response.status_code == 200, alert(response)
    return response.context["form"].initial


def send(client, initial: dict, **changes):
    data = {k: v for k, v in initial.items() if v is not None}
    data.update(action="send", token=secrets.token_urlsafe(20), **changes)
    response = client.post("/webmail/compose/", data)
    assert response.status_code == 302, alert(response)
    return response


def test_it_fills_in_a_reply_to_the_sender_with_the_original_quoted(people):
    initial = open_form(people["client"], "reply", 61)
    assert initial["to"] == f"Bob Example <{people['bob'].email}>"
    assert initial.get("cc", "") == ""
    assert initial["subject"] == "Re: Quarterly review"
    assert "On 20 November 2026 at 09:30, Bob Example" in initial["body"]
    assert "> Numbers attached.\n> See you Thursday." in initial["body"]


def test_it_replies_to_all_but_the_user_and_keeps_cc(people, automatic_user):
    initial = open_form(people["client"], "reply-all", 61)
    assert people["bob"].email in initial["to"]
    assert people["carol"].email in initial["to"]
    assert automatic_user.email not in initial["to"] + initial["cc"]
    assert initial["cc"] == f"Dan Example <{people['dan'].email}>"


def test_it_sends_a_reply_threaded_and_marks_the_original_answered(people, mailbox):
    send(people["client"], open_form(people["client"], "reply", 61), body="Thanks, Bob.")
    [reply] = arrived(people["bob"].maildir)
    assert reply["Subject"] == "Re: Quarterly review"
    assert reply["In-Reply-To"] == ORIGINAL_ID
    assert reply["References"] == f"{EARLIER_ID} {ORIGINAL_ID}"
    assert "\\Answered" in flags_of(mailbox.maildir, ORIGINAL_ID)


def test_it_sends_a_reply_to_all_to_everyone_once(people):
    send(people["client"], open_form(people["client"], "reply-all", 61))
    for name in ("bob", "carol", "dan"):
        [received] = arrived(people[name].maildir)
        assert received["Subject"] == "Re: Quarterly review"


def test_it_forwards_with_the_attachments_fetched_from_the_server(people, mailbox):
    client = people["client"]
    response = client.get("/webmail/message/59/forward/?folder=INBOX")
    initial = response.context["form"].initial
    assert initial["subject"] == "Fwd: Signed form attached"
    assert "---------- Forwarded message ----------" in initial["body"]
    [(part, kept)] = response.context["attachments"]
    assert part.filename == "signed form.pdf" and kept
    send(client, initial, to=people["carol"].email, keep=[part.number])
    [forwarded] = arrived(people["carol"].maildir)
    assert forwarded["Subject"] == "Fwd: Signed form attached"
    [attachment] = forwarded.iter_attachments()
    assert attachment.get_filename() == "signed form.pdf"
    assert attachment.get_payload(decode=True) == b"%PDF-1.4 test\n"
    assert "$Forwarded" in flags_of(mailbox.maildir, "Signed form attached")


def test_it_does_not_double_prefixes():
    from webmail.outgoing import forward_subject, reply_subject

    assert reply_subject("Re: RE: Aw: Plan") == "Re: Plan"
    assert forward_subject("Fwd: FW: Plan") == "Fwd: Plan"
