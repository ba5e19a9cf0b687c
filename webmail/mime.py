"""Reading what a mail server says about messages: encoded words, transfer encodings,
charsets and the MIME structure (BODYSTRUCTURE) of a message. Never raises on bad input:
damaged mail gives what can be read.

Every charset name a sender chooses goes through one allow-list (`charset_codec`): Python's
codec registry also holds codecs that are not text encodings (base64, zlib, rot13), that
always fail (undefined) or that take quadratic time (idna, punycode). Work is bounded by size:
headers, encoded words, parts and decoded bytes are capped, and every allowed codec is linear.
"""

import binascii
import encodings.aliases
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

_SURROGATE = re.compile("[\ud800-\udfff]")

CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Bounds on the work one message can ask for.
HEADER_LIMIT = 16_000  # characters of one header that are decoded and shown
ENCODED_WORDS_LIMIT = 500  # encoded words decoded in one header; the rest stay as they came
DECODE_LIMIT = 4_000_000  # bytes of one body decoded (callers read less: WEBMAIL_*_LIMIT)
ADDRESSES_LIMIT = 200  # addresses shown in one To/Cc header
PARTS_LIMIT = 500  # MIME parts read from one message's structure
DEPTH_LIMIT = 50  # nesting of multiparts read

# The encodings mail really uses (Python codec names). Anything else is read as UTF-8, or
# Windows-1252 when it is not UTF-8, and shown as a substitute.
CHARSETS = {
    "utf_8", "utf_7", "utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be",
    "ascii", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5", "iso8859_6",
    "iso8859_7", "iso8859_8", "iso8859_9", "iso8859_10", "iso8859_11", "iso8859_13",
    "iso8859_14", "iso8859_15", "iso8859_16", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254",
    "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "tis_620", "koi8_r", "koi8_u", "cp866",
    "cp437", "cp850", "mac_roman", "gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950",
    "shift_jis", "cp932", "euc_jp", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
    "iso2022_jp_3", "iso2022_jp_ext", "euc_kr", "cp949", "iso2022_kr",
}  # fmt: skip
# Labels that mail programs write for a larger encoding (as browsers read them, WHATWG).
SUPERSETS = {
    "latin_1": "cp1252",
    "iso8859_9": "cp1254",
    "iso8859_11": "cp874",
    "tis_620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}
# Names seen in mail that Python's alias table does not know.
EXTRA_ALIASES = {
    "windows874": "cp874",
    "xsjis": "shift_jis",
    "windows31j": "cp932",
    "xgbk": "gbk",
    "xeuctw": "big5",
    "ksc56011987": "cp949",
    "unicode11utf7": "utf_7",
    "utf8mb4": "utf_8",
    "xmacroman": "mac_roman",
    "macintosh": "mac_roman",
}


def _charset_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_CODECS = {
    **{_charset_key(codec): codec for codec in CHARSETS},
    **{
        _charset_key(alias): codec
        for alias, codec in encodings.aliases.aliases.items()
        if codec in CHARSETS
    },
    **EXTRA_ALIASES,
}


def charset_codec(name: str | None) -> str | None:
    """The Python codec to read a charset named in mail with, or None if it is not allowed."""
    if not name:
        return None
    codec = _CODECS.get(_charset_key(name[:40]))
    return SUPERSETS.get(codec, codec)


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
        return self.params.get("charset", "")

    @property
    def substituted(self) -> bool:
        """Whether its text is read with a substitute charset (it names one not allowed)."""
        return bool(self.charset.strip()) and charset_codec(self.charset) is None

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
    substituted_headers: bool = False  # the subject named a charset that is not allowed

    @property
    def substituted(self) -> bool:
        """Whether some text is shown with a substitute character set."""
        parts = (self.text_part, self.html_part)
        return self.substituted_headers or any(p is not None and p.substituted for p in parts)

    def part(self, number: str) -> "Part | None":
        """The body, attachment or inline image numbered `number`, if the message has it."""
        parts = [*self.attachments, *self.inline_parts.values(), self.text_part, self.html_part]
        return next((p for p in parts if p is not None and p.number == number), None)


# Decoding helpers -----------------------------------------------------------------------------


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return _undeclared(value)
    return str(value)


def _undeclared(data: bytes) -> str:
    """Text in no declared charset (raw 8-bit headers, unlabelled or unknown bodies): UTF-8
    when it is, else Windows-1252, the usual 8-bit charset of mail that does not say."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _utf16_order(data: bytes, codec: str) -> str:
    """UTF-16/32 without a byte-order mark: guess the order from where the zero bytes fall
    (Latin text has one in each pair), rather than the machine's order."""
    if codec not in ("utf_16", "utf_32") or data[:4] in (
        b"\xff\xfe\x00\x00",
        b"\x00\x00\xfe\xff",
    ):
        return codec
    if codec == "utf_16" and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return codec
    width = 2 if codec == "utf_16" else 4
    sample = data[:4000]
    first = sample[0::width].count(0)
    last = sample[width - 1 :: width].count(0)
    return f"{codec}_{'be' if first > last else 'le'}"


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode a body in the charset it names; return the text and whether a substitute
    charset was used because that one is unknown or not allowed. Never raises."""
    data = data[:DECODE_LIMIT]
    codec = charset_codec(charset)
    if codec is None:
        return _undeclared(data), bool(charset and charset.strip())
    if codec == "ascii":
        return _undeclared(data), False  # 8-bit text labelled ASCII is common
    try:
        return without_surrogates(data.decode(_utf16_order(data, codec), "replace")), False
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        return _undeclared(data), True


def without_surrogates(text: str) -> str:
    """`text` with lone surrogates replaced: UTF-7 decodes "+2D0-" to one even with "replace"
    (and IMAP's modified UTF-7 too), and no page or answer can be encoded with it."""
    return _SURROGATE.sub("\ufffd", text)


def decode_charset(data: bytes, charset: str | None) -> str:
    """Decode `data` in the charset it names, or a substitute; never raises."""
    return decode_text(data, charset)[0]


def decode_part(data: bytes, part: Part) -> str:
    """Undo a part's transfer encoding and charset (or a substitute: see Part.substituted)."""
    return decode_charset(decode_transfer(data, part.encoding), part.charset)


# An RFC 2047 encoded word. Encoded text holds no "?" or space, so scanning stays linear.
ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The bytes of an encoded word's text, or None if they cannot be read."""
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(raw, header=True)
    try:
        return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    except binascii.Error:
        return None


def read_header(value) -> tuple[str, bool]:
    """Decode RFC 2047 encoded words in a header, drop control characters; return the text and
    whether a substitute charset was used. Never raises; a word that cannot be read stays as
    it came. Adjacent words in one charset are joined before decoding, as mail programs split
    characters across them."""
    if isinstance(value, (bytes, str)):
        value = value[:HEADER_LIMIT]
    text = as_text(value)
    if "=?" not in text:  # no encoded words: most headers, and the list shows 50 at a time
        return CONTROL.sub(" ", text).strip(), False
    shown: list[str] = []
    pending: tuple[str, bytearray] | None = None  # charset and bytes of adjacent words
    substituted = False
    end = 0

    def flush() -> None:
        nonlocal pending, substituted
        if pending is not None:
            decoded, odd = decode_text(bytes(pending[1]), pending[0])
            shown.append(decoded)
            substituted = substituted or odd
            pending = None

    for count, match in enumerate(ENCODED_WORD.finditer(text)):
        if count >= ENCODED_WORDS_LIMIT:
            break
        between = text[end : match.start()]
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 adds a language: utf-8*en
        data = _word_bytes(match.group(2), match.group(3))
        end = match.end()
        if data is None:  # shown as it came, with the space before it
            flush()
            shown += [between, match.group(0)]
            continue
        if between and not (pending is not None and between.isspace()):
            flush()
            shown.append(between)
        if pending is not None and pending[0].lower() == charset.lower():
            pending[1].extend(data)
        else:
            flush()
            pending = (charset, bytearray(data))
    flush()
    shown.append(text[end:])
    return CONTROL.sub(" ", "".join(shown)).strip(), substituted


def decode_words(value) -> str:
    """Decode RFC 2047 encoded words in a header; never raise, drop control characters."""
    return read_header(value)[0]


def address(item) -> tuple[str, str]:
    """Return (display name, email address) of an ENVELOPE address."""
    mailbox, host = as_text(item.mailbox), as_text(item.host)
    email_address = f"{mailbox}@{host}" if host else mailbox
    return decode_words(item.name), CONTROL.sub("", email_address)


def addresses(items) -> str:
    items = list(items or ())
    shown = []
    for item in items[:ADDRESSES_LIMIT]:
        name, email_address = address(item)
        if name and email_address:
            shown.append(f"{name} <{email_address}>")
        else:
            shown.append(name or email_address)
    if len(items) > ADDRESSES_LIMIT:
        shown.append(f"and {len(items) - ADDRESSES_LIMIT} more")
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
                return _printable(decode_charset(unquote_to_bytes(encoded), charset))
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


class TooComplex(ValueError):
    """A structure nested deeper or with more parts than Webmail reads."""


def walk_structure(structure, prefix: str = "", depth: int = 0) -> Iterator[Part]:
    """Yield the leaf parts of a BODYSTRUCTURE with their IMAP part numbers."""
    if depth > DEPTH_LIMIT:
        raise TooComplex("nested too deeply")
    if structure.is_multipart:
        for position, child in enumerate(structure[0], start=1):
            number = f"{prefix}.{position}" if prefix else str(position)
            yield from walk_structure(child, number, depth + 1)
    else:
        yield _leaf(structure, prefix or "1")


def read_structure(message: Message, structure) -> None:
    """Sort a BODYSTRUCTURE into the message's bodies and attachments. What cannot be read
    (a damaged or too complex structure) marks the message damaged, keeping the parts read
    before it: its raw source can still be shown."""
    parts: list[Part] = []
    try:
        for part in walk_structure(structure):
            if len(parts) >= PARTS_LIMIT:
                raise TooComplex("too many parts")
            parts.append(part)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError):
        message.damaged = True
    arrange(message, parts)


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


def aware(value) -> datetime | None:
    """`value` in UTC if it is a date and time that can be shown in any time zone, else None.

    Senders write any year and zone offset they like ("+9999", year 9999), which time zone
    conversion refuses; a date with no zone ("-0000": unknown) is taken as UTC.
    """
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return value if 1900 <= value.year <= 9000 else None
