"""Reading damaged mail: encoded words, transfer encodings and MIME structure never fail."""

import pytest
from imapclient.response_parser import parse_response
from imapclient.response_types import BodyData

from webmail import mime


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?q?K=F6ln?=", "Grüße aus Köln"),
        (b"=?x-unknown?q?abc?=", "abc"),
        (b"=?utf-8?b?not-base64!!?=", "=?utf-8?b?not-base64!!?="),
        (b"plain\r\nInjected: header", "plain  Injected: header"),
        (None, ""),
    ],
)
def test_header_words_are_decoded_without_failing(raw, shown):
    assert mime.decode_words(raw) == shown


def test_damaged_base64_gives_what_can_be_read():
    assert mime.decode_transfer(b"SGVsbG8g!!!d29ybGQ=", "base64") == b"Hello world"
    assert mime.decode_transfer(b"SGVsbG8gd29yb", "base64") == b"Hello wor"
    for misplaced in (b"QQ=A", b"A===", b"Q=AA", b"=", b"===="):
        assert isinstance(mime.decode_transfer(misplaced, "base64"), bytes)


def test_streamed_decoding_matches_whole_decoding():
    encoded = b"SGVsbG8g\r\nd29y\r\nbGQh\r\n"
    chunks = [encoded[i : i + 5] for i in range(0, len(encoded), 5)]
    assert b"".join(mime.decode_stream(chunks, "base64")) == b"Hello world!"
    quoted = b"caf=C3=A9 =\r\nsoft\r\nline\r\n"
    chunks = [quoted[i : i + 4] for i in range(0, len(quoted), 4)]
    assert (
        b"".join(mime.decode_stream(chunks, "quoted-printable")) == "café soft\r\nline\r\n".encode()
    )


def structure(text: bytes):
    """Parse a BODYSTRUCTURE the way a FETCH response is parsed."""
    return BodyData.create(parse_response([text])[0])


def test_it_finds_bodies_attachments_and_inline_images():
    parsed = structure(
        b'((("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)'
        b'(("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 20 1 NIL NIL NIL NIL)'
        b'("IMAGE" "PNG" ("NAME" "logo.png") "<logo@x>" NIL "BASE64" 100 NIL ("INLINE" NIL)'
        b" NIL NIL)"
        b' "RELATED" ("BOUNDARY" "r") NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "a") NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "=?utf-8?q?B=C3=A9rnard?=.pdf") NIL NIL "BASE64" 300 NIL'
        b' ("ATTACHMENT" ("FILENAME*" "utf-8\'\'R%C3%A9sum%C3%A9.pdf")) NIL NIL)'
        b' "MIXED" ("BOUNDARY" "m") NIL NIL NIL)'
    )
    message = mime.Message(folder="INBOX", uid=1)

    mime.arrange(message, list(mime.walk_structure(parsed)))

    assert message.text_part.number == "1.1"
    assert message.html_part.number == "1.2.1"
    assert message.html_part.encoding == "quoted-printable"
    assert message.inline_parts["logo@x"].number == "1.2.2"
    assert [(part.number, part.filename) for part in message.attachments] == [("2", "Résumé.pdf")]


def test_a_single_part_message_is_part_one():
    parsed = structure(
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)'
    )
    assert [part.number for part in mime.walk_structure(parsed)] == ["1"]


def test_quoted_printable_without_line_breaks_streams_in_pieces():
    encoded = b"caf=C3=A9 " * 20_000  # 200 KB and not a single line break
    chunks = [encoded[i : i + 7_001] for i in range(0, len(encoded), 7_001)]

    pieces = list(mime.decode_stream(chunks, "quoted-printable"))

    assert len(pieces) > 1
    assert b"".join(pieces) == "café ".encode() * 20_000


def test_file_names_lose_direction_overrides():
    parsed = structure(
        b'("APPLICATION" "OCTET-STREAM" ("NAME" "invoice\xe2\x80\xaefdp.exe") NIL NIL "BASE64" 10'
        b' NIL ("ATTACHMENT" NIL) NIL NIL)'
    )
    [part] = mime.walk_structure(parsed)
    assert part.filename == "invoicefdp.exe"
