"""Building the messages Webmail sends and saves as drafts, and reading its drafts back.

Messages are built with the standard library's `email` package (SMTP policy: CRLF line ends,
RFC 2047 words for non-ASCII names and subjects, RFC 2231 for non-ASCII filenames), each with
a Message-ID and a Date.
"""

import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid

from django.utils import timezone

from webmail.mime import CONTROL

MAX_RECIPIENTS = 100  # per message; the hourly limit is a setting
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw)\s*:\s*)+", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|wg)\s*:\s*)+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


class InvalidMessage(ValueError):
    """Something in the form cannot go into a message header (said in plain words)."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Draft:
    """What the compose form holds: recipients as typed, subject, text and attachments."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    attachments: list[Attachment] = field(default_factory=list)


def check_header(value: str, *, what: str) -> str:
    """Refuse line breaks and other control characters, which could add headers."""
    if CONTROL.search(value):
        raise InvalidMessage(f"The {what} cannot contain line breaks or other control characters.")
    return value


def parse_addresses(value: str, *, what: str) -> list[Address]:
    """Comma-separated addresses, display names allowed; each one checked."""
    check_header(value, what=what)
    found = []
    for name, address in getaddresses([value]):
        if not name and not address:
            continue
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or " " in address:
            shown = f"{name} <{address}>" if name else address or name
            raise InvalidMessage(f"“{shown}” in {what} is not an email address.")
        try:
            found.append(Address(display_name=name, addr_spec=address))
        except (ValueError, IndexError) as exc:
            raise InvalidMessage(f"“{address}” in {what} is not an email address.") from exc
    if len(found) > MAX_RECIPIENTS:
        raise InvalidMessage(f"{what} has more than {MAX_RECIPIENTS} addresses.")
    return found


def message_ids(value: str) -> str:
    """Message-IDs from a header, space-separated (nothing else survives)."""
    return " ".join(_MESSAGE_ID.findall(value or ""))


def build(draft: Draft, *, sender: Address, is_draft: bool = False) -> EmailMessage:
    """The message for `draft`, from `sender`. Bcc is kept only in drafts, never when sending."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    for header, value in (("To", draft.to), ("Cc", draft.cc)):
        if addresses := parse_addresses(value, what=header):
            mail[header] = addresses
    if is_draft and (bcc := parse_addresses(draft.bcc, what="Bcc")):
        mail["Bcc"] = bcc
    mail["Subject"] = check_header(draft.subject, what="subject")
    mail["Date"] = format_datetime(timezone.now())
    mail["Message-ID"] = make_msgid(domain=sender.domain or "localhost")
    if in_reply_to := message_ids(draft.in_reply_to):
        mail["In-Reply-To"] = in_reply_to
    if references := message_ids(draft.references):
        mail["References"] = references
    mail.set_content(draft.body.replace("\r\n", "\n"), cte="quoted-printable")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not subtype or CONTROL.search(attachment.content_type):
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=check_header(attachment.filename, what="attachment name") or "attachment",
        )
    return mail


def with_bcc(raw: bytes, draft: Draft) -> bytes:
    """The sent message with its Bcc line, for the sender's own copy in Sent."""
    bcc = parse_addresses(draft.bcc, what="Bcc")
    if not bcc:
        return raw
    header = EmailMessage(policy=policy.SMTP)
    header["Bcc"] = bcc
    return header.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n" + raw


def recipients(draft: Draft) -> list[str]:
    """Every envelope recipient (To, Cc and Bcc), each once."""
    found = []
    for what, value in (("To", draft.to), ("Cc", draft.cc), ("Bcc", draft.bcc)):
        for address in parse_addresses(value, what=what):
            if address.addr_spec.lower() not in (a.lower() for a in found):
                found.append(address.addr_spec)
    return found


def read_draft(raw: bytes) -> Draft:
    """A saved draft (or any message) back as form fields and attachments."""
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    draft = Draft()
    for name in ("to", "cc", "bcc", "subject"):
        try:
            setattr(draft, name, " ".join(str(mail.get(name, "")).split()))
        except (ValueError, LookupError, IndexError):
            setattr(draft, name, "")
    draft.in_reply_to = message_ids(str(mail.get("In-Reply-To", "")))
    draft.references = message_ids(str(mail.get("References", "")))
    body = mail.get_body(preferencelist=("plain",))
    if body is not None:
        try:
            draft.body = body.get_content()
        except (LookupError, ValueError):
            draft.body = body.get_payload(decode=True).decode("utf-8", "replace")
    draft.body = draft.body.replace("\r\n", "\n")
    draft.attachments = attachments_of(mail)
    return draft


def attachments_of(mail: EmailMessage) -> list[Attachment]:
    """The attachments of a parsed message, decoded."""
    found = []
    for part in mail.iter_attachments():
        data = part.get_payload(decode=True)
        if data is None:  # an attached message (message/rfc822): keep it as it is
            data = part.as_bytes()
        found.append(
            Attachment(
                filename=part.get_filename() or "attachment",
                content_type=part.get_content_type(),
                data=data,
            )
        )
    return found


def reply_subject(subject: str) -> str:
    return "Re: " + _REPLY_PREFIX.sub("", subject or "").strip()


def forward_subject(subject: str) -> str:
    return "Fwd: " + _FORWARD_PREFIX.sub("", subject or "").strip()


def signed(body: str, signature: str) -> str:
    """`body` (empty, or a quoted or forwarded original) with the signature above it, after the
    standard "-- " line (RFC 3676); no signature leaves it as it is."""
    if not signature.strip():
        return body
    return f"\n\n-- \n{signature}{body}"


def quoted(text: str, *, date, sender: str) -> str:
    """The original as plain text under "On <date>, <sender> wrote:", each line quoted."""
    when = f"{date.day} {date:%B %Y at %H:%M}" if date else "an unknown date"
    lines = "\n".join("> " + line if line else ">" for line in text.splitlines())
    return f"\n\nOn {when}, {sender} wrote:\n{lines}\n"


# Replies and forwards -------------------------------------------------------------------------


@dataclass
class Original:
    """What a reply or forward needs from the original's headers."""

    message_id: str = ""
    references: str = ""
    sender: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)


def read_original(header_bytes: bytes) -> Original:
    """Read a message's headers; a header that cannot be read counts as missing."""
    headers = BytesParser(policy=policy.default).parsebytes(header_bytes, headersonly=True)

    def listed(name: str) -> list[Address]:
        try:
            value = headers.get(name)
            found = list(getattr(value, "addresses", ()) or ())
        except (ValueError, LookupError, IndexError, AttributeError):
            return []
        return [a for a in found if a.addr_spec and "@" in a.addr_spec]

    def text(name: str) -> str:
        try:
            return str(headers.get(name, ""))
        except (ValueError, LookupError, IndexError):
            return ""

    return Original(
        message_id=message_ids(text("Message-ID")).split(" ")[0],
        references=message_ids(text("References")),
        sender=listed("From"),
        reply_to=listed("Reply-To"),
        to=listed("To"),
        cc=listed("Cc"),
    )


def _joined(addresses: list[Address]) -> str:
    return ", ".join(str(address) for address in addresses)


def _without(addresses: list[Address], leave_out: set[str]) -> list[Address]:
    """`addresses` each once, leaving out those in `leave_out` (lower-case addresses)."""
    kept = []
    for address in addresses:
        key = address.addr_spec.lower()
        if key not in leave_out:
            kept.append(address)
            leave_out = leave_out | {key}
    return kept


def reply_to(original: Original, *, subject: str, own: str, everyone: bool) -> Draft:
    """The recipients, subject and threading headers of a reply (to all, with `everyone`)."""
    answer_to = original.reply_to or original.sender
    own_key = {own.lower()}
    to = _without(answer_to, own_key) or answer_to
    cc = []
    if everyone:
        to = _without(to + original.to, own_key)
        cc = _without(original.cc, own_key | {a.addr_spec.lower() for a in to})
    references = " ".join(filter(None, [original.references, original.message_id]))
    return Draft(
        to=_joined(to),
        cc=_joined(cc),
        subject=reply_subject(subject),
        in_reply_to=original.message_id,
        references=message_ids(references),
    )


def forwarded(text: str, *, sender: str, date, subject: str, to: str) -> str:
    """The original under a plain-text "Forwarded message" heading."""
    when = f"{date.day} {date:%B %Y at %H:%M}" if date else "an unknown date"
    return (
        "\n\n---------- Forwarded message ----------\n"
        f"From: {sender}\nDate: {when}\nSubject: {subject}\nTo: {to}\n\n{text}\n"
    )
