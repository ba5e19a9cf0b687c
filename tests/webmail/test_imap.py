"""The IMAP module's own rules: which hosts are Microsoft's, what input may reach a command."""

import inspect

import pytest

from tests.conftest import APP_PASSWORD
from webmail import imap


@pytest.mark.parametrize(
    "host",
    [
        "outlook.office365.com",
        "OUTLOOK.OFFICE365.COM.",
        "imap-mail.outlook.com",
        "outlook.office.com",
    ],
)
def test_microsoft_hosts_are_recognised(host):
    assert imap.Server(host, 993, "ssl", "", 15).is_microsoft


@pytest.mark.parametrize("host", ["mail.example.com", "notoffice365.com.example", "localhost"])
def test_other_hosts_are_not_microsoft(host):
    assert not imap.Server(host, 993, "ssl", "", 15).is_microsoft


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\x00b", "a\x1bb", "a\x7fb"])
def test_control_characters_are_refused(value):
    with pytest.raises(imap.UnsafeInput):
        imap.check_text(value, what="search term")


def test_long_text_is_refused():
    with pytest.raises(imap.UnsafeInput, match="too long"):
        imap.check_text("x" * 201, what="search term")


def test_a_deadline_passed_during_connect_shuts_the_socket_at_once():
    import socket
    import time

    guard = imap._Guard()
    guard.start(0.01)
    time.sleep(0.05)  # the connect took longer than the whole deadline
    ours, theirs = socket.socketpair()
    try:
        guard.attach(ours)
        ours.settimeout(1)
        assert ours.recv(10) == b""  # shut for reading: a drip would not hold it open
    finally:
        ours.close()
        theirs.close()


# Signing in -----------------------------------------------------------------------------------

UNICODE_PASSWORD = "Grüße-Kennwort-€-密码"


def test_a_password_beyond_ascii_signs_in(user_client, user, dovecot, imap_settings):
    user.email = "unicode-password@practice.example"
    user.save()
    dovecot.add_user(user.email, UNICODE_PASSWORD)

    response = user_client.post("/webmail/sign-in/", {"password": UNICODE_PASSWORD}, follow=True)

    assert response.status_code == 200
    assert "Sign in to your mailbox" not in response.content.decode()
    assert "There are no messages in this folder." in response.content.decode()


def test_a_wrong_password_beyond_ascii_is_a_rejection(user_client, user, dovecot, imap_settings):
    user.email = "unicode-wrong@practice.example"
    user.save()
    dovecot.add_user(user.email, UNICODE_PASSWORD)

    response = user_client.post("/webmail/sign-in/", {"password": UNICODE_PASSWORD + "x"})

    assert response.status_code == 200
    assert "The mail server rejected the password" in response.content.decode()


def test_a_kept_connection_holds_no_password_in_imaplibs_command_log(
    user_client, user, mailbox, monkeypatch
):
    signed_in = []
    real_sign_in = imap.Mailbox.sign_in

    def sign_in(self, username, password):
        signed_in.append(self)
        return real_sign_in(self, username, password)

    monkeypatch.setattr(imap.Mailbox, "sign_in", sign_in)

    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    (mail,) = signed_in
    assert mail.socket() is not None  # kept open for the next page
    kept = repr(mail._client._imap._cmd_log)
    assert APP_PASSWORD not in kept
    assert "LOGIN" not in kept.upper()


def test_special_uses_come_from_flags_before_names():
    folders = [
        imap._folder([b"\\HasNoChildren"], "/", "Archive/Trash"),
        imap._folder([b"\\HasNoChildren", b"\\Trash"], "/", "Bin"),
        imap._folder([b"\\HasNoChildren"], "/", "Sent Items"),
        imap._folder([b"\\HasNoChildren"], "/", "Old/Sent Items"),
    ]

    imap._name_special_uses(folders)

    assert [f.special for f in folders] == [None, "\\Trash", "\\Sent", None]


@pytest.mark.parametrize("raw", [b"&2D0-", b"&,,,-", b"Kunden/&APw-ller&"])
def test_a_folder_name_the_server_encoded_badly_is_still_a_name(raw):
    folder = imap._folder([b"\\HasNoChildren"], "/", raw)

    folder.name.encode()  # no lone surrogate: the page and its links can be written
    assert folder.name


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("login failed: [AUTHENTICATIONFAILED] Authentication failed.", "AUTHENTICATIONFAILED"),
        ("[LIMIT] Maximum number of connections", "LIMIT"),
        ("[BADCHARSET (UTF-8)] no", "BADCHARSET"),
        ("LOGIN failed.", ""),
    ],
)
def test_response_codes_are_read(text, code):
    assert imap.response_code(text) == code


# imapclient's internals ---------------------------------------------------------------------------


def test_imapclients_internals_are_as_webmail_imap_expects(mailbox):
    """Fail loudly when an imapclient (or imaplib) upgrade changes what webmail/imap/ uses.

    pyproject.toml caps imapclient below its next major version; this catches a minor release.
    """
    import imaplib

    from imapclient import IMAPClient, imap4, response_parser, tls

    for name in ["_create_IMAP4", "_raw_command_untagged", "_imap", "normalise_times"]:
        assert name in inspect.getsource(IMAPClient), f"IMAPClient.{name} has gone"
    assert list(inspect.signature(tls.IMAP4_TLS.__init__).parameters) == [
        "self", "host", "port", "ssl_context", "timeout"
    ]  # fmt: skip
    assert "timeout" in inspect.signature(imap4.IMAP4WithTimeout.__init__).parameters
    # webmail.imap.parsing makes ENVELOPE dates out of range read as unreadable, not crash.
    assert "parse_to_datetime(" in inspect.getsource(response_parser._convert_ENVELOPE)
    assert response_parser.parse_to_datetime.__module__ == "webmail.imap.parsing"
    for name in ["_new_tag", "_get_capabilities", "_create_socket", "_simple_command",
                 "_untagged_response", "_log"]:  # fmt: skip
        assert callable(getattr(imaplib.IMAP4, name, None)), f"imaplib.IMAP4.{name} has gone"

    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    try:
        raw = mail._client._imap
        assert isinstance(raw, imap._TLS)  # our _create_IMAP4 made the connection
        assert isinstance(raw.untagged_responses, dict)
        assert isinstance(raw._cmd_log, dict)  # cleared after sign-in
        assert mail._client._timeout.connect == mail.server.timeout
        before = mail.commands
        with mail.deadline():
            mail.page("INBOX", 1)
            mail.page("INBOX", 1)  # flags only, through imaplib directly
            mail.search("INBOX", "subject", "Message 5", 1)  # _raw_command_untagged
            mail.folders()  # _simple_command and _untagged_response (LIST-STATUS)
        assert mail.commands > before  # our _new_tag counts commands
        assert b"IMAP4REV1" in mail._client.capabilities()  # from the greeting
    finally:
        mail.close()
