"""Organising mail: every change is a POST with a CSRF token, and lands on the server."""

import re

import pytest
from django.test import Client

from devtools.maildir import make_folder
from tests.conftest import APP_PASSWORD, FLAVOURS, each_flavour
from webmail import imap


@pytest.fixture(params=list(FLAVOURS))
def dovecot(request):
    """Every test here runs on Dovecot as shipped and on one trimmed like Exchange."""
    return each_flavour(request)


def act(client, action, uids, folder="INBOX", **extra):
    data = {"action": action, "uid": uids, "folder": folder, **extra}
    return client.post("/webmail/actions/", data, follow=True)


def server_view(mailbox, folder="INBOX"):
    """What the server itself holds: {uid: flags} of a folder, read with a separate connection."""
    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    try:
        with mail.deadline():
            mail.select(folder)
            uids = mail._client.search(["ALL"])
            fetched = mail._client.fetch(uids, ["FLAGS"]) if uids else {}
            return {uid: set(data[b"FLAGS"]) for uid, data in fetched.items()}
    finally:
        mail.close()


def test_mark_unread_and_read(user_client, automatic_user, mailbox):
    act(user_client, "unread", [1, 2])
    assert b"\\Seen" not in server_view(mailbox)[1]

    response = act(user_client, "read", [1, 2])

    assert b"\\Seen" in server_view(mailbox)[1]
    assert "Marked 2 messages as read." in response.content.decode()


def test_flag_and_unflag(user_client, automatic_user, mailbox):
    act(user_client, "flag", [5])
    assert b"\\Flagged" in server_view(mailbox)[5]

    act(user_client, "unflag", [5])
    assert b"\\Flagged" not in server_view(mailbox)[5]


def test_the_list_reflects_a_change_at_once(user_client, automatic_user):
    user_client.get("/webmail/")  # fills the connection's page cache

    act(user_client, "flag", [20])

    page = user_client.get("/webmail/").content.decode()
    row = re.search(r'<tr class="([^"]*)">(?:(?!</tr>).)*?/webmail/message/20/\?', page, re.S)
    assert "flagged" in row.group(1)


def test_move_to_a_folder(user_client, automatic_user, mailbox):
    response = act(user_client, "move", [7], target="Kunden/Müller")

    assert "Moved 1 message to Kunden/Müller." in response.content.decode()
    assert 7 not in server_view(mailbox)
    assert len(server_view(mailbox, "Kunden/Müller")) == 2


def test_delete_moves_to_trash(user_client, automatic_user, mailbox):
    trash = mailbox.folder("trash")

    response = act(user_client, "delete", [8, 9])

    assert "Moved 2 messages to Trash." in response.content.decode()
    assert 8 not in server_view(mailbox) and 9 not in server_view(mailbox)
    assert len(server_view(mailbox, trash)) == 2


def test_delete_in_trash_asks_first_then_deletes_for_good(user_client, automatic_user, mailbox):
    trash = mailbox.folder("trash")
    act(user_client, "delete", [8])

    confirm = act(user_client, "delete", [1], folder=trash)

    assert "Delete 1 message for good?" in confirm.content.decode()
    assert len(server_view(mailbox, trash)) == 1

    done = act(user_client, "delete", [1], folder=trash, confirmed="on")

    assert "Deleted 1 message for good." in done.content.decode()
    assert server_view(mailbox, trash) == {}


def test_actions_go_back_where_the_user_was(user_client, automatic_user):
    response = user_client.post(
        "/webmail/actions/",
        {
            "action": "unread",
            "uid": [60],
            "folder": "INBOX",
            "next": "/webmail/message/60/?folder=INBOX",
        },
    )
    assert response["Location"] == "/webmail/message/60/?folder=INBOX"


def test_actions_never_redirect_elsewhere(user_client, automatic_user):
    response = user_client.post(
        "/webmail/actions/",
        {"action": "unread", "uid": [60], "folder": "INBOX", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/webmail/"


def test_choosing_no_message_says_so(user_client, automatic_user):
    response = user_client.post(
        "/webmail/actions/", {"action": "read", "folder": "INBOX"}, follow=True
    )
    assert response.redirect_chain == [("/webmail/", 302)]
    assert "Choose at least one message." in response.content.decode()


@pytest.mark.parametrize("path", ["/webmail/actions/", "/webmail/sign-out/"])
def test_changes_by_get_are_refused(user_client, automatic_user, path):
    assert user_client.get(path, {"action": "delete", "uid": 1}).status_code == 405


def test_an_action_without_csrf_token_is_refused(automatic_user, mailbox):
    client = Client(enforce_csrf_checks=True)
    client.force_login(automatic_user)

    response = client.post("/webmail/actions/", {"action": "delete", "uid": [1], "folder": "INBOX"})

    assert response.status_code == 403
    assert 1 in server_view(mailbox)


def test_a_move_target_with_control_characters_is_refused(user_client, automatic_user, mailbox):
    response = user_client.post(
        "/webmail/actions/",
        {"action": "move", "uid": [7], "folder": "INBOX", "target": "Archive\r\nA1 DELETE INBOX"},
    )
    assert response.status_code == 400
    assert 7 in server_view(mailbox)


def test_without_uidplus_nothing_is_removed_for_good(
    user_client, automatic_user, mailbox, monkeypatch
):
    act(user_client, "delete", [8])
    real = imap.IMAPClient.has_capability
    monkeypatch.setattr(
        imap.IMAPClient, "has_capability", lambda self, name: name != "UIDPLUS" and real(self, name)
    )

    response = act(user_client, "delete", [1], folder=mailbox.folder("trash"), confirmed="on")

    assert response.status_code == 502
    assert "cannot remove single messages safely" in response.content.decode()
    assert len(server_view(mailbox, mailbox.folder("trash"))) == 1


def test_actions_do_not_send_a_secure_page_to_plain_http(user_client, automatic_user):
    response = user_client.post(
        "/webmail/actions/",
        {"action": "unread", "uid": [60], "folder": "INBOX", "next": "http://testserver/webmail/"},
        secure=True,
    )
    assert response["Location"] == "/webmail/"


def test_mark_unread_on_the_message_page_leaves_it_unread(user_client, automatic_user, mailbox):
    page = user_client.get("/webmail/message/55/?folder=INBOX").content.decode()
    form = re.search(r"<form[^>]*>(?:(?!</form>).)*>Mark unread</button>", page, re.S).group(0)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))

    response = user_client.post("/webmail/actions/", {**fields, "action": "unread"}, follow=True)

    assert response.redirect_chain[-1][0] == "/webmail/"
    assert b"\\Seen" not in server_view(mailbox)[55]


def test_delete_uses_the_real_trash_not_a_folder_named_like_it(
    user_client, automatic_user, mailbox
):
    make_folder(mailbox.maildir, "Archive/Trash")  # a decoy: named Trash, not the Trash
    mailbox.dovecot.give_to_dovecot(mailbox.maildir)
    trash = mailbox.folder("trash")

    act(user_client, "delete", [8])
    confirm = act(user_client, "delete", [1], folder=trash)
    in_decoy = act(user_client, "delete", [1], folder="Archive/Trash")

    assert 8 not in server_view(mailbox)
    assert len(server_view(mailbox, trash)) == 1
    assert "Delete 1 message for good?" in confirm.content.decode()  # Trash deletes for good
    assert "Delete 1 message for good?" not in in_decoy.content.decode()
    assert server_view(mailbox, "Archive/Trash") == {}
