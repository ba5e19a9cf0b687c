"""Reading the server's answers: the message list's FETCH, envelopes, folders and their
special uses, and message structure."""

import re
from contextlib import suppress

from imapclient import imap_utf7, response_parser
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_response
from imapclient.response_types import Address, Envelope

from webmail.imap.data import Folder, Summary
from webmail.mime import (
    Message,
    address,
    addresses,
    as_text,
    aware,
    decode_words,
    read_structure,
    without_surrogates,
)

SPECIAL_USE = ("\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive")
SPECIAL_NAMES = {
    "drafts": "\\Drafts",
    "sent": "\\Sent",
    "sent items": "\\Sent",
    "sent messages": "\\Sent",
    "trash": "\\Trash",
    "deleted items": "\\Trash",
    "deleted messages": "\\Trash",
    "junk": "\\Junk",
    "junk email": "\\Junk",
    "spam": "\\Junk",
    "archive": "\\Archive",
}


def _parse_date(value: bytes, normalise: bool = True):
    """imapclient's parse_to_datetime, saying ValueError for any date it cannot read.

    imapclient reads an ENVELOPE's date with it and gives up on ValueError only; a sender's
    zone offset of "+99999999999999" raised OverflowError, which failed the whole FETCH.
    """
    try:
        return parse_to_datetime(value, normalise=normalise)
    except OverflowError as exc:
        raise ValueError(f"the date {value!r} is out of range") from exc


response_parser.parse_to_datetime = _parse_date


def _arrange(message: Message, data: dict) -> None:
    """Sort a FETCHed BODYSTRUCTURE into the message's bodies and attachments, or mark it
    damaged (its raw source can still be shown)."""
    read_structure(message, data.get(b"BODYSTRUCTURE"))


# The tokens of a FETCH answer of the message list's shape (_parse_list_fetch).
_LIST_TOKEN = re.compile(
    rb"[ ]*(?:(\()|(\))"  # ( or )
    rb'|"((?:[^"\\\r\n]|\\["\\])*)"'  # a quoted string, with \" and \\ escaped
    rb"|\{(\d+)\}$"  # a literal's size, at the end of the line imaplib cut before it
    rb'|([^ ()"{}\[\]\r\n]+)'  # an atom: NIL, a number, a flag, an item's name
    rb"|(.))",  # anything else: not an answer of this shape
    re.DOTALL,
)
_ESCAPED = re.compile(rb"\\([\"\\])")


def _parse_list_fetch(data: list, *, by_uid: bool) -> dict[int, dict] | None:
    """What imapclient's fetch() returns for LIST_ITEMS, or None for any other shape.

    `data` is a FETCH answer as imaplib hands it over: lines, and (line, literal) pairs where
    a line ends with {size}. Parentheses become tuples, NIL None, numbers int, strings bytes.
    """
    stack: list[list] = [[]]
    for part in data:
        line, literal = part if isinstance(part, tuple) else (part, None)
        if not isinstance(line, bytes):
            return None
        for opening, closing, quoted, size, atom, other in _LIST_TOKEN.findall(line):
            if other:
                return None
            if opening:
                stack.append([])
            elif closing:
                if len(stack) == 1:
                    return None
                done = tuple(stack.pop())
                stack[-1].append(done)
            elif atom:
                if atom.isdigit():
                    stack[-1].append(int(atom))
                else:
                    stack[-1].append(None if atom.upper() == b"NIL" else atom)
            elif size:
                if literal is None or len(literal) != int(size):
                    return None
                stack[-1].append(literal)
                literal = None
            else:
                stack[-1].append(_ESCAPED.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        if literal is not None:
            return None
    answers = stack[0]
    if len(stack) != 1 or len(answers) % 2:
        return None
    found: dict[int, dict] = {}
    for number, items in zip(answers[::2], answers[1::2], strict=True):
        if not isinstance(number, int) or not isinstance(items, tuple) or len(items) % 2:
            return None
        message = {b"SEQ": number}
        for name, value in zip(items[::2], items[1::2], strict=True):
            name = name.upper() if isinstance(name, bytes) else b""
            number_item = name in (b"UID", b"RFC822.SIZE") and isinstance(value, int)
            if number_item or (name == b"FLAGS" and isinstance(value, tuple)):
                message[name] = value
            elif name == b"ENVELOPE" and isinstance(value, tuple) and len(value) == 10:
                envelope = _envelope(value)
                if envelope is None:
                    return None
                message[name] = envelope
            else:
                return None
        # Keyed as imapclient keys: by UID (then not kept among the items), else by number.
        key = message.pop(b"UID", number) if by_uid else number
        found.setdefault(key, {}).update(message)
    return found


def _envelope(value: tuple) -> Envelope | None:
    """imapclient's Envelope of a parsed ENVELOPE, or None if it is not one."""
    date = None
    if isinstance(value[0], bytes) and value[0]:
        with suppress(ValueError):
            date = _parse_date(value[0], normalise=False)
    lists = []
    for listed in value[2:8]:
        if not listed:  # NIL, or an empty list
            lists.append(None)
            continue
        if not isinstance(listed, tuple):
            return None
        if not all(isinstance(entry, tuple) and len(entry) == 4 for entry in listed):
            return None
        lists.append(tuple(Address(*entry) for entry in listed))
    return Envelope(date, value[1], *lists, value[8], value[9])


def _summary(uid: int, data: dict) -> Summary:
    flags = data.get(b"FLAGS", ())
    envelope = data.get(b"ENVELOPE")
    sender_name, sender_address = ("", "")
    if envelope is not None and envelope.from_:
        sender_name, sender_address = address(envelope.from_[0])
    return Summary(
        uid=uid,
        sender=sender_name or sender_address,
        sender_address=sender_address,
        recipients=addresses(envelope.to) if envelope is not None else "",
        subject=decode_words(envelope.subject) if envelope is not None else "",
        date=aware(getattr(envelope, "date", None)),
        size=data.get(b"RFC822.SIZE", 0),
        seen=b"\\Seen" in flags,
        flagged=b"\\Flagged" in flags,
    )


def _folder_name(raw) -> str:
    """A folder's name from the server's modified UTF-7, as well as it can be read."""
    if not isinstance(raw, bytes):
        return without_surrogates(str(raw))
    try:
        return without_surrogates(imap_utf7.decode(raw))
    except ValueError:  # UnicodeError is a ValueError
        return raw.decode("utf-8", "replace")


def _listed(listed) -> list:
    lines = [item for item in listed if item not in (None, b"")]
    parsed = parse_response(lines)
    return [parsed[i : i + 3] for i in range(0, len(parsed), 3)]


def _folder(flags, delimiter, name) -> Folder:
    """A folder as listed, its special use taken only from the server's flags."""
    flags = {as_text(flag) for flag in flags}
    name = _folder_name(name)
    delimiter = as_text(delimiter)
    special = next((flag for flag in flags if flag in SPECIAL_USE), None)
    selectable = not ({"\\Noselect", "\\NonExistent"} & flags)
    return Folder(name=name, delimiter=delimiter, special=special, selectable=selectable)


def _name_special_uses(folders: list[Folder]) -> None:
    """Guess special uses from names, only for uses no folder carries as a server flag.

    A folder merely named like Trash (Archive/Trash, say) must not take mail meant for the
    folder the server flags \\Trash. Of several guesses for one use, the shallowest wins.
    """
    flagged = {folder.special for folder in folders if folder.special}
    guessed: dict[str, Folder] = {}
    for folder in sorted(folders, key=lambda f: (f.depth, f.name.casefold())):
        if folder.special or not folder.selectable:
            continue
        special = SPECIAL_NAMES.get(folder.label.casefold())
        if special and special not in flagged and special not in guessed:
            guessed[special] = folder
            folder.special = special
