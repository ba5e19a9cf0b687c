"""Reading what a mail server says about messages: encoded words, transfer encodings,
charsets and the MIME structure (BODYSTRUCTURE) of a message. Never raises on bad input:
damaged mail gives what can be read.
"""

import binascii
import email.errors
import email.header
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_to_bytes

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Part:
    number: str
    content_type: str
    params: dict[str, str]
    content_id: str
    encoding: str
    size: int
    disposition: str
    filename: str

    @property
    def charset(self) -> str:
        return self.params.get("charset", "utf-8")

    @property
    def is_attachment(self) -> bool:
        return self.disposition == "attachment" or bool(self.filename)


@dataclass
class Message:
    folder: str
    uid: int
    subject: str = ""
    sender: str = ""
    to: str = ""
    cc: str = ""
    reply_to: str = ""
    date: datetime | None = None
    size: int = 0
    seen: bool = True
    flagged: bool = False
    text_part: Part | None = None
    html_part: Part | None = None
    attachments: list[Part] = field(default_factory=list)
    inline_parts: dict[str, Part] = field(default_factory=dict)  # by Content-ID
    text: str = ""
    text_truncated: bool = False
    damaged: bool = False  # the structure could not be read; the raw source still can

    def part(self, number: str) -> "Part | None":
        """The body, attachment or inline image numbered `number`, if the message has it."""
        parts = [*self.attachments, *self.inline_parts.values(), self.text_part, self.html_part]
        return next((p for p in parts if p is not None and p.number == number), None)


# Decoding helpers -----------------------------------------------------------------------------


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def decode_words(value) -> str:
    """Decode RFC 2047 encoded words in a header; never raise, drop control characters."""
    text = as_text(value)
    if "=?" not in text:  # no encoded words: most headers, and the list shows 50 at a time
        return CONTROL.sub(" ", text).strip()
    try:
        chunks = email.header.decode_header(text)
    except (email.errors.HeaderParseError, ValueError):
        chunks = [(text, None)]
    decoded = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            decoded.append(chunk)
            continue
        try:
            decoded.append(chunk.decode(charset or "utf-8", "replace"))
        except LookupError:
            decoded.append(chunk.decode("utf-8", "replace"))
    return CONTROL.sub(" ", "".join(decoded)).strip()


def address(item) -> tuple[str, str]:
    """Return (display name, email address) of an ENVELOPE address."""
    mailbox, host = as_text(item.mailbox), as_text(item.host)
    email_address = f"{mailbox}@{host}" if host else mailbox
    return decode_words(item.name), CONTROL.sub("", email_address)


def addresses(items) -> str:
    shown = []
    for item in items or ():
        name, email_address = address(item)
        if name and email_address:
            shown.append(f"{name} <{email_address}>")
        else:
            shown.append(name or email_address)
    return ", ".join(item for item in shown if item)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; damaged input gives what can be read."""
    encoding = encoding.lower()
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", data)
        cleaned = cleaned[: len(cleaned) // 4 * 4]
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            # Padding in the wrong place: read the characters without it.
            unpadded = cleaned.replace(b"=", b"")
            return binascii.a2b_base64(unpadded[: len(unpadded) // 4 * 4])
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def decode_stream(chunks, encoding: str) -> Iterator[bytes]:
    """Undo a Content-Transfer-Encoding chunk by chunk, for downloads of any size."""
    encoding = encoding.lower()
    if encoding == "base64":
        pending = b""
        for chunk in chunks:
            pending += re.sub(rb"[^A-Za-z0-9+/=]", b"", chunk)
            usable = len(pending) // 4 * 4
            if usable:
                yield decode_transfer(pending[:usable], "base64")
                pending = pending[usable:]
    elif encoding == "quoted-printable":
        pending = b""
        for chunk in chunks:
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if not cut and len(pending) > 65536:
                # No line breaks at all: cut anyway, but never inside an =XX escape.
                tail = pending[-2:]
                cut = len(pending) - 2 + tail.index(b"=") if b"=" in tail else len(pending)
            if cut:
                yield quopri.decodestring(pending[:cut])
                pending = pending[cut:]
        if pending:
            yield quopri.decodestring(pending)
    else:
        yield from chunks


def decode_charset(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def pairs(items) -> dict[str, str]:
    if not isinstance(items, (tuple, list)):
        return {}
    pairs = {}
    for key, value in zip(items[::2], items[1::2], strict=False):
        pairs[as_text(key).lower()] = as_text(value)
    return pairs


def _filename(params: dict[str, str], disposition_params: dict[str, str]) -> str:
    """The part's file name: RFC 2231 (filename*=utf-8''...) first, then RFC 2047 words."""
    for source in (disposition_params, params):
        for key in ("filename*", "name*"):
            if key in source:
                charset, _, encoded = source[key].partition("''")
                return _printable(decode_charset(unquote_to_bytes(encoded), charset or "utf-8"))
        for key in ("filename", "name"):
            if source.get(key):
                return _printable(decode_words(source[key]))
    return ""


def _printable(name: str) -> str:
    """Drop control and format characters: a right-to-left override could make "fdp.exe"
    look like "exe.pdf"."""
    return "".join(ch for ch in name if ch.isprintable()).strip()


def _leaf(structure, number: str) -> Part:
    main, sub = as_text(structure[0]).lower(), as_text(structure[1]).lower()
    content_type = f"{main}/{sub}"
    if main == "text":
        disposition_at = 9
    elif content_type == "message/rfc822":
        disposition_at = 11
    else:
        disposition_at = 8
    disposition, disposition_params = "", {}
    if len(structure) > disposition_at and isinstance(structure[disposition_at], tuple):
        disposition = as_text(structure[disposition_at][0]).lower()
        if len(structure[disposition_at]) > 1:
            disposition_params = pairs(structure[disposition_at][1])
    params = pairs(structure[2])
    filename = _filename(params, disposition_params)
    if content_type == "message/rfc822" and not filename:
        filename = "forwarded-message.eml"
    size = structure[6] if isinstance(structure[6], int) else 0
    return Part(
        number=number,
        content_type=content_type,
        params=params,
        content_id=as_text(structure[3]).strip().strip("<>"),
        encoding=as_text(structure[5]).lower() or "7bit",
        size=size,
        disposition=disposition,
        filename=filename,
    )


def walk_structure(structure, prefix: str = "") -> Iterator[Part]:
    """Yield the leaf parts of a BODYSTRUCTURE with their IMAP part numbers."""
    if structure.is_multipart:
        for position, child in enumerate(structure[0], start=1):
            yield from walk_structure(child, f"{prefix}.{position}" if prefix else str(position))
    else:
        yield _leaf(structure, prefix or "1")


def arrange(message: Message, parts: list[Part]) -> None:
    """Choose the text and HTML bodies; the rest are attachments or inline images."""
    for part in parts:
        if part.is_attachment:
            continue
        if part.content_type == "text/plain" and message.text_part is None:
            message.text_part = part
        elif part.content_type == "text/html" and message.html_part is None:
            message.html_part = part
    for part in parts:
        if part in (message.text_part, message.html_part):
            continue
        if part.content_id and part.content_type.startswith("image/"):
            message.inline_parts[part.content_id] = part
            if part.disposition == "inline" or not part.filename:
                continue
        message.attachments.append(part)


def aware(value):
    return value if isinstance(value, datetime) else None
