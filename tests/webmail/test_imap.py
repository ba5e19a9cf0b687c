"""The IMAP module's own rules: which hosts are Microsoft's, what input may reach a command."""

import pytest

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
