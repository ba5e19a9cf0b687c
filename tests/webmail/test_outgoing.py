"""Building messages, reading SMTP answers, and XOAUTH2 (against the fake SMTP server)."""

import base64
from email import policy
from email.headerregistry import Address
from email.parser import BytesParser

import pytest

from tests.webmail.fake_smtp import FakeSmtpServer
from webmail import outgoing, smtp
from webmail.outgoing import Attachment, Draft, InvalidMessage

SENDER = Address(display_name="Zoë Ørsted", addr_spec="zoe@practice.example")
SERVER = smtp.SmtpServer("smtp.office365.com", 587, "starttls", "", 5)
OTHER = smtp.SmtpServer("mail.practice.example", 587, "starttls", "", 5)


def built(draft: Draft, **options) -> bytes:
    return outgoing.build(draft, sender=SENDER, **options).as_bytes()


def test_it_encodes_non_ascii_names_subjects_and_filenames_in_ascii_headers():
    raw = built(
        Draft(
            to="Jürgen Groß <j@example.de>",
            subject="Grüße – Übersicht",
            body="Größe\n",
            attachments=[Attachment("Übersicht.pdf", "application/pdf", b"%PDF")],
        )
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Grüße – Übersicht"
    assert parsed["From"].addresses[0].display_name == "Zoë Ørsted"
    assert parsed["To"].addresses[0].display_name == "Jürgen Groß"
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["Übersicht.pdf"]
    assert parsed["Message-ID"].endswith("@practice.example>")
    assert parsed["Date"]


def test_it_keeps_bcc_out_of_a_sent_message_but_in_a_draft():
    draft = Draft(to="a@example.org", bcc="hidden@example.org", subject="x")
    assert b"hidden@example.org" not in built(draft)
    assert b"hidden@example.org" in built(draft, is_draft=True)
    assert outgoing.recipients(draft) == ["a@example.org", "hidden@example.org"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("subject", "Hi\r\nBcc: victim@example.org"),
        ("subject", "Hi\nX-Injected: 1"),
        ("to", "a@example.org\r\nBcc: victim@example.org"),
        ("subject", "bell\x07"),
    ],
)
def test_it_refuses_control_characters_in_headers(field, value):
    with pytest.raises(InvalidMessage, match="line breaks or other control characters"):
        built(Draft(**{"to": "a@example.org", field: value}))


def test_it_refuses_what_is_not_an_address():
    with pytest.raises(InvalidMessage, match="is not an email address"):
        outgoing.recipients(Draft(to="Bob, alice@example.org"))


@pytest.mark.parametrize(
    "code, reply, error, words",
    [
        (550, "5.7.30 Basic authentication is not supported for Client Submission.",
         smtp.PasswordNotAllowed, "Connect your Microsoft account"),
        (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
         "Mailbox.", smtp.PasswordNotAllowed, "does not allow sending mail with a password"),
        (432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
         smtp.TooManySends, "too many messages at the same moment"),
        (552, "5.3.4 Message size exceeds fixed maximum message size", smtp.TooLarge, "too large"),
        (535, "5.7.3 Authentication unsuccessful", smtp.SignInRefused,
         "Microsoft also gives this answer"),
        (451, "4.7.0 Temporary server error", smtp.Refused, "Try again in a few minutes"),
    ],
)  # fmt: skip
def test_it_reads_refusals_by_their_enhanced_status_codes(code, reply, error, words):
    found = smtp._refusal(code, reply.encode(), SERVER)
    assert type(found) is error
    assert words in found.message


def test_it_does_not_blame_microsoft_on_other_servers():
    found = smtp._refusal(535, b"5.7.8 Error: authentication failed", OTHER)
    assert type(found) is smtp.SignInRefused
    assert "Microsoft" not in found.message


def test_it_signs_in_with_xoauth2_when_given_an_access_token(dovecot):
    with FakeSmtpServer(dovecot.root / "tls") as fake:
        server = smtp.SmtpServer("localhost", fake.port, "starttls", str(dovecot.ca_file), 5)
        login = smtp.Login(username="zoe@practice.example", access_token="token-123")
        refused = smtp.submit(
            server, login, sender="zoe@practice.example", recipients=["a@example.org"],
            raw=built(Draft(to="a@example.org", subject="OAuth")),
        )  # fmt: skip
    assert refused == {}
    [auth] = [line for line in fake.lines if line.startswith("AUTH")]
    expected = base64.b64encode(b"user=zoe@practice.example\x01auth=Bearer token-123\x01\x01")
    assert auth == f"AUTH XOAUTH2 {expected.decode()}"
    assert "token-123" not in repr(login)
