"""Signed-in connections are reused within a browser session, safely and never across users."""

import subprocess
import time

from django.test import Client

from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password, user_with_mailbox
from webmail import imap
from webmail.pool import budget_name, pool


def logins(dovecot, email) -> int:
    return dovecot.log_file.read_text().count(f"Login: user=<{email}>")


def test_the_next_page_reuses_the_signed_in_connection(user_client, automatic_user, mailbox):
    user_client.get("/webmail/")
    user_client.get("/webmail/?page=2")
    user_client.get("/webmail/message/60/")

    assert logins(mailbox.dovecot, mailbox.email) == 1


def test_new_browser_sessions_of_a_user_share_the_signed_in_connection(automatic_user, mailbox):
    for _ in range(2):
        client = Client()
        client.force_login(automatic_user)
        client.get("/webmail/")

    assert logins(mailbox.dovecot, mailbox.email) == 1


def test_fourteen_new_browser_sessions_in_a_row_all_open_the_inbox(automatic_user, mailbox):
    for _ in range(14):
        client = Client()
        client.force_login(automatic_user)
        page = client.get("/webmail/").content.decode()
        assert "Grüße aus Köln" in page

    assert Profile.objects.get(user=automatic_user).email_password_rejected_at is None
    assert mailbox.dovecot.connections_by_user().get(mailbox.email, 0) <= 4


def test_an_idle_connection_to_the_mailbox_is_closed_before_one_past_the_budget(
    user_client, automatic_user, mailbox, settings
):
    settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX = 1
    server = imap.Server.from_settings()
    budget = budget_name(server, mailbox.email)
    other = pool.lend(  # say, signed in with a password since changed back
        (automatic_user.pk, "another password"),
        budget,
        lambda: imap.Mailbox(server).sign_in(mailbox.email, APP_PASSWORD),
    )
    pool.give_back((automatic_user.pk, "another password"), other)

    page = user_client.get("/webmail/").content.decode()

    assert "Grüße aus Köln" in page
    assert mailbox.dovecot.connections_by_user()[mailbox.email] == 1
    assert other.socket() is None  # closed, not left to the idle timeout


def test_new_mail_shows_on_the_next_view(user_client, automatic_user, mailbox):
    user_client.get("/webmail/")
    mailbox.receive("Just arrived", sender=("New", "new@example.org"), text="x")

    assert "Just arrived" in user_client.get("/webmail/").content.decode()


def test_changes_by_another_mail_program_show_on_the_next_view(
    user_client, automatic_user, mailbox
):
    user_client.get("/webmail/")
    other = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    with other.deadline():
        other.mark("INBOX", [11], "seen", on=True)
    other.close()

    page = user_client.get("/webmail/").content.decode()

    assert '<tr class="unread' not in page.split("/webmail/message/11/")[0].rsplit("<tr", 1)[1]


def test_a_connection_the_server_closed_is_replaced(user_client, automatic_user, mailbox, dovecot):
    user_client.get("/webmail/")
    subprocess.run(
        ["doveadm", "-c", str(dovecot.root / "dovecot.conf"), "kick", mailbox.email],
        check=True,
        capture_output=True,
    )
    time.sleep(0.2)

    response = user_client.get("/webmail/")

    assert response.status_code == 200
    assert "Grüße aus Köln" in response.content.decode()


def test_a_changed_password_is_never_served_by_the_old_connection(user_client, user, mailbox):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    user_client.get("/webmail/")

    save_password(
        user, password="a-password-the-server-rejects", access=Profile.WebmailAccess.AUTOMATIC
    )
    page = user_client.get("/webmail/").content.decode()

    assert "The mail server rejected your saved email password" in page


def test_idle_connections_are_closed(user_client, automatic_user, mailbox, dovecot, settings):
    settings.WEBMAIL_IMAP_IDLE_SECONDS = 1
    user_client.get("/webmail/")
    assert dovecot.connection_count() >= 1

    deadline = time.monotonic() + 6
    while dovecot.connection_count() and time.monotonic() < deadline:
        time.sleep(0.2)

    assert dovecot.connection_count() == 0
    assert len(pool) == 0


def test_signing_out_closes_the_connection(user_client, automatic_user, mailbox, dovecot):
    user_client.get("/webmail/")
    assert len(pool) == 1

    user_client.post("/accounts/logout/")

    assert len(pool) == 0


def test_users_only_ever_see_their_own_mailbox(dovecot, imap_settings, django_user_model, db):
    clients = {}
    for name in ("carol", "dave"):
        owner, mailbox = user_with_mailbox(django_user_model, dovecot, name)
        mailbox.receive(f"Private to {name}", text="secret")
        clients[name] = Client()
        clients[name].force_login(owner)

    carol_inbox = clients["carol"].get("/webmail/").content.decode()
    dave_inbox = clients["dave"].get("/webmail/").content.decode()
    dave_message = clients["dave"].get("/webmail/message/1/").content.decode()

    assert "Private to carol" in carol_inbox and "Private to dave" not in carol_inbox
    assert "Private to dave" in dave_inbox and "Private to carol" not in dave_inbox
    assert "Private to dave" in dave_message and "Private to carol" not in dave_message


def test_a_page_shown_again_asks_the_server_only_for_flags(user_client, automatic_user, sent):
    user_client.get("/webmail/")
    sent.clear()

    page = user_client.get("/webmail/").content.decode()

    fetches = [command for command in sent if "FETCH" in command]
    assert fetches == ["FETCH " + ",".join(map(str, range(60, 10, -1))) + " (UID FLAGS)"]
    assert "Grüße aus Köln – Übersicht" in page


def test_messages_deleted_by_another_mail_program_leave_the_list(
    user_client, automatic_user, mailbox
):
    user_client.get("/webmail/")
    other = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    with other.deadline():
        other.delete("INBOX", [59, 60])
        other.delete("Trash", [1, 2])
    other.close()

    page = user_client.get("/webmail/").content.decode()

    assert "1–50 of 58" in page
    assert "Grüße aus Köln" not in page and "Signed form attached" not in page
    assert "Newsletter with pictures" in page
