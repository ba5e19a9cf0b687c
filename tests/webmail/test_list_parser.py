"""The message list's own FETCH parser gives what imapclient's would, or steps aside."""

import pytest
from imapclient.response_parser import parse_fetch_response

from webmail.imap import _parse_list_fetch

ENVELOPE = (
    b'("Thu, 04 Jan 2024 07:10:00 +0000" "Re: Meeting #950" '
    b'(("Margaret Hughes" NIL "margaret.hughes" "hughes.example")) '
    b'(("Margaret Hughes" NIL "margaret.hughes" "hughes.example")) '
    b'(("Margaret Hughes" NIL "margaret.hughes" "hughes.example")) '
    b'((NIL NIL "p" "bench.example")) NIL NIL NIL "<bulk-1-950@example>")'
)

ANSWERS = {
    "plain": [b"951 (UID 951 FLAGS (\\Seen \\Recent) RFC822.SIZE 359 ENVELOPE " + ENVELOPE + b")"],
    "literal names, as Dovecot sends 8-bit text": [
        (
            b'952 (UID 952 FLAGS () RFC822.SIZE 350 ENVELOPE ("Thu, 04 Jan 2024 07:15:00 +0000" '
            b'"Hello" (({18}',
            "Søren Østergaard".encode(),
        ),
        (b' NIL "soren" "oe.example")) (({18}', "Søren Østergaard".encode()),
        b' NIL "soren" "oe.example")) NIL ((NIL NIL "p" "b.example")) NIL NIL NIL NIL))',
    ],
    "escapes, groups, no date, keywords": [
        b"7 (FLAGS (\\Flagged $Forwarded) UID 70 RFC822.SIZE 12 ENVELOPE "
        b'(NIL "say \\"hi\\" \\\\o/" '
        b'NIL NIL NIL ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL))',
        b'8 (UID 80 FLAGS (\\Seen) RFC822.SIZE 1 ENVELOPE ("not a date" NIL NIL NIL NIL NIL NIL '
        b"NIL NIL NIL))",
    ],
    "an unsolicited flag change among the answers": [
        b"951 (UID 951 FLAGS (\\Seen) RFC822.SIZE 359 ENVELOPE " + ENVELOPE + b")",
        b"951 (FLAGS (\\Seen \\Flagged))",
    ],
    "an empty literal subject": [
        (b"9 (UID 90 FLAGS () RFC822.SIZE 5 ENVELOPE (NIL {0}", b""),
        b" NIL NIL NIL NIL NIL NIL NIL NIL))",
    ],
}


@pytest.mark.parametrize("by_uid", [False, True])
@pytest.mark.parametrize("name", ANSWERS)
def test_the_same_as_imapclient(name, by_uid):
    data = ANSWERS[name]

    ours = _parse_list_fetch(data, by_uid=by_uid)

    assert ours == dict(parse_fetch_response(data, normalise_times=False, uid_is_key=by_uid))


def test_it_reads_the_names_and_subjects_a_page_shows():
    [found] = _parse_list_fetch(
        ANSWERS["literal names, as Dovecot sends 8-bit text"], by_uid=True
    ).values()

    assert found[b"ENVELOPE"].from_[0].name.decode() == "Søren Østergaard"
    assert found[b"ENVELOPE"].subject == b"Hello"
    assert found[b"RFC822.SIZE"] == 350
    [other] = _parse_list_fetch(
        ANSWERS["escapes, groups, no date, keywords"][:1], by_uid=True
    ).values()
    assert other[b"ENVELOPE"].subject == b'say "hi" \\o/'
    assert other[b"FLAGS"] == (b"\\Flagged", b"$Forwarded")


@pytest.mark.parametrize(
    "data",
    [
        [b'5 (UID 5 BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 3 1))'],  # another item
        [b"5 (UID 5 BODY[HEADER] NIL)"],  # brackets
        [b"5 (UID 5 FLAGS (\\Seen)"],  # a parenthesis missing
        [b"5 (UID 5 FLAGS (\\Seen)))"],  # one too many
        [(b"5 (UID 5 ENVELOPE (NIL {9}", b"too short"), b" NIL))"],  # a literal's size is wrong
        [b"5 (UID 5 ENVELOPE (NIL NIL))"],  # an envelope of two fields
        [b'5 (UID 5 ENVELOPE (NIL NIL ("just a name") NIL NIL NIL NIL NIL NIL NIL))'],
        [b'5 (UID 5 FLAGS ("unterminated)'],
        [b"5 (UID)"],  # a name without a value
        [None],  # imaplib's "no data"
    ],
)
def test_any_other_shape_is_left_to_imapclient(data):
    assert _parse_list_fetch(data, by_uid=False) is None
