"""Fixtures for Webmail's tests: the IMAP commands sent, a second user to write to, and a
signed-in sender."""

import imaplib

import pytest

from tests.conftest import user_with_mailbox


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The IMAP commands sent from now on, by name and arguments."""
    names = []
    real_command = imaplib.IMAP4._command

    def spy(self, name, *args):
        shown = (a.decode() if isinstance(a, bytes) else str(a) for a in args if a is not None)
        names.append(" ".join([name, *shown]))
        return real_command(self, name, *args)

    monkeypatch.setattr(imaplib.IMAP4, "_command", spy)
    return names


@pytest.fixture
def recipient(django_user_model, dovecot):
    """Bob, with a mailbox of his own, and the mailbox."""
    return user_with_mailbox(django_user_model, dovecot, "bob")


@pytest.fixture
def sender_client(client, automatic_user, recipient, postfix, smtp_settings):
    """Alice signed in (Automatic), with Postfix accepting mail for every test mailbox."""
    postfix.sync_mailboxes()
    client.force_login(automatic_user)
    return client
