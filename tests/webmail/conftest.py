"""Fixtures for writing mail: a second user to write to, and a signed-in sender."""

import pytest

from tests.conftest import user_with_mailbox


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
