"""Reading damaged mail: encoded words, transfer encodings and MIME structure never fail."""

import time

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


DANGEROUS_CHARSETS = ["idna", "punycode", "undefined", "rot13", "rot_13", "base64",
                      "base64_codec", "zlib", "bz2", "hex", "uu", "quopri", "mbcs", "oem",
                      "unicode_escape", "raw_unicode_escape", "palmos", "x-unknown", "utf-9",
                      "", "a" * 500]  # fmt: skip


@pytest.mark.parametrize("charset", DANGEROUS_CHARSETS)
def test_charsets_that_are_not_mail_text_encodings_are_refused(charset):
    assert mime.charset_codec(charset) is None


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf_8"),
        ("utf8", "utf_8"),
        ("US-ASCII", "ascii"),
        ("ISO-8859-1", "cp1252"),  # mail labelled Latin-1 is usually Windows-1252
        ("iso_8859-15", "iso8859_15"),
        ("Windows-1251", "cp1251"),
        ("KOI8-R", "koi8_r"),
        ("koi8-u", "koi8_u"),
        ("GB2312", "gb18030"),
        ("gbk", "gb18030"),
        ("Big5", "big5hkscs"),
        ("Shift_JIS", "cp932"),
        ("EUC-JP", "euc_jp"),
        ("ISO-2022-JP", "iso2022_jp"),
        ("ks_c_5601-1987", "cp949"),
        ("EUC-KR", "cp949"),
        ("UTF-16LE", "utf_16_le"),
        ("utf-32", "utf_32"),
        ("windows-874", "cp874"),
    ],
)
def test_charsets_mail_uses_are_read_under_any_spelling(label, codec):
    assert mime.charset_codec(label) == codec


@pytest.mark.parametrize("charset", DANGEROUS_CHARSETS)
def test_a_refused_charset_is_read_as_utf8_and_says_so(charset):
    text, substituted = mime.decode_text("Grüße".encode(), charset)
    assert text == "Grüße"
    assert substituted is bool(charset)  # no charset at all is not a substitute

    text, _ = mime.decode_text("Grüße".encode("cp1252"), charset)
    assert text == "Grüße"  # not UTF-8: Windows-1252, the usual undeclared charset


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"=?idna?q?x_y?=", "x y"),
        (b"=?undefined?q?abc?=", "abc"),
        (b"=?punycode?q?abc?=", "abc"),
        (b"=?zlib?b?YWJj?=", "abc"),
        (b"=?utf-8?b?QQ=A?=", "=?utf-8?b?QQ=A?="),  # padding inside: left as it came
        (b"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        (b"=?utf-8?q?ok?= =?utf-8?b?!!?= =?utf-8?q?fine?=", "ok =?utf-8?b?!!?= fine"),
        (b"=?utf-8?q?=E2=9C?= =?utf-8?q?=93_done?=", "✓ done"),  # a character split in two
        (b"=?utf-8*en?q?with_language?=", "with language"),
        (b"=?utf-16?b?AEgAaQ==?=", "Hi"),  # UTF-16 without a byte-order mark
        (b"=?koi8-r?b?8NLJ18XU?=", "Привет"),
        (b"caf\xe9 raw", "café raw"),  # raw 8-bit, not UTF-8
        ("Grüße raw".encode(), "Grüße raw"),
        (b"bell\x07\x1b[31m", "bell  [31m"),
    ],
)
def test_hostile_header_words_are_read_without_failing(raw, shown):
    assert mime.decode_words(raw) == shown


def test_a_header_in_a_refused_charset_is_marked():
    assert mime.read_header(b"=?idna?q?x?=") == ("x", True)
    assert mime.read_header(b"=?utf-8?q?x?=") == ("x", False)


def test_utf16_without_a_byte_order_mark_is_read_in_either_order():
    for order in ("utf-16-be", "utf-16-le"):
        assert mime.decode_text("Hello, world".encode(order), "utf-16") == ("Hello, world", False)
    assert mime.decode_text("Grüße".encode("utf-32-be"), "utf-32") == ("Grüße", False)
    assert mime.decode_text(b"\x00H\x00i\x00", "utf-16")[0].startswith("Hi")  # odd length


def test_work_on_one_header_is_bounded():
    started = time.thread_time()
    many_words = mime.decode_words(b"=?utf-8?q?a?= " * 100_000)
    punycode = mime.decode_words(b"=?punycode?q?" + b"a" * 1_000_000 + b"?=")
    long_plain = mime.decode_words(b"x" * 1_000_000)

    assert time.thread_time() - started < 0.5
    assert len(many_words) <= mime.HEADER_LIMIT
    assert len(long_plain) == mime.HEADER_LIMIT
    assert "a" * 1_000 not in punycode or len(punycode) <= mime.HEADER_LIMIT


def test_work_on_one_body_is_bounded():
    body = b"abc-def " * 1_000_000  # 8 MB: punycode would take hours on it
    started = time.thread_time()

    text, substituted = mime.decode_text(body, "punycode")

    assert time.thread_time() - started < 0.5
    assert substituted
    assert len(text) == mime.DECODE_LIMIT


def test_a_structure_nested_too_deeply_keeps_what_was_read():
    inner = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)'
    for _ in range(mime.DEPTH_LIMIT + 5):
        inner = b"(" + inner + b' "MIXED" ("BOUNDARY" "b") NIL NIL NIL)'
    parsed = structure(
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)'
        + inner
        + b' "MIXED" ("BOUNDARY" "top") NIL NIL NIL)'
    )
    message = mime.Message(folder="INBOX", uid=1)

    mime.read_structure(message, parsed)

    assert message.damaged
    assert message.text_part.number == "1"


def test_a_structure_with_thousands_of_parts_is_cut():
    leaf = (
        b'("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 4 NIL ("ATTACHMENT" NIL) NIL NIL)'
    )
    parsed = structure(b"(" + leaf * 2_000 + b' "MIXED" ("BOUNDARY" "b") NIL NIL NIL)')
    message = mime.Message(folder="INBOX", uid=1)

    mime.read_structure(message, parsed)

    assert message.damaged
    assert len(message.attachments) == mime.PARTS_LIMIT


def test_a_missing_structure_marks_the_message_damaged():
    message = mime.Message(folder="INBOX", uid=1)
    mime.read_structure(message, None)
    assert message.damaged


def test_a_part_naming_a_refused_charset_says_it_is_substituted():
    part = mime.Part("1", "text/plain", {"charset": "idna"}, "", "7bit", 1, "", "")
    plain = mime.Part("1", "text/plain", {}, "", "7bit", 1, "", "")
    message = mime.Message(folder="INBOX", uid=1, text_part=part)

    assert part.substituted and not plain.substituted
    assert message.substituted
    assert mime.decode_part(b"x", part) == "x"
