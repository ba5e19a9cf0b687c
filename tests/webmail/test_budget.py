"""Each mailbox gets at most its budget of connections, and a server's own limit is explained."""

import gc
import threading
import time
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone

from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, user_with_mailbox
from webmail import imap
from webmail.models import ConnectionSlot, SignInFailure
from webmail.pool import budget_name, pool


def budget_of(email: str) -> str:
    return budget_name(imap.Server.from_settings(), email)


def hold_server_connections(email: str, count: int) -> list[imap.Mailbox]:
    """Connections of the user's other mail programs (a phone, a desktop client)."""
    server = imap.Server.from_settings()
    return [imap.Mailbox(server).sign_in(email, APP_PASSWORD) for _ in range(count)]


def test_parallel_requests_never_exceed_the_budget(
    transactional_db, dovecot, imap_settings, django_user_model
):
    imap_settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX = 2
    user, mailbox = user_with_mailbox(django_user_model, dovecot, "erin")
    mailbox.receive("Hello Erin", text="x")
    peak, statuses = [0], []
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], dovecot.connections_by_user().get(mailbox.email, 0))
            time.sleep(0.02)

    def browse():
        client = Client()
        client.force_login(user)
        for _ in range(3):
            response = client.get("/webmail/")
            statuses.append((response.status_code, "Hello Erin" in response.content.decode()))
        connection.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    browsers = [threading.Thread(target=browse) for _ in range(8)]
    for thread in browsers:
        thread.start()
    for thread in browsers:
        thread.join()
    done.set()
    sampler.join()

    assert statuses == [(200, True)] * 24
    assert 1 <= peak[0] <= 2
    assert Profile.objects.get(user=user).email_password_rejected_at is None


def test_a_slot_left_by_a_killed_process_is_taken_over(
    user_client, automatic_user, mailbox, settings
):
    settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX = 1
    ConnectionSlot.objects.create(
        mailbox=budget_of(mailbox.email),
        number=0,
        holder="elsewhere:4242:dead",
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    response = user_client.get("/webmail/")

    assert response.status_code == 200
    assert ConnectionSlot.objects.get().holder == pool.holder


def test_it_waits_for_a_slot_another_process_holds_then_explains(
    user_client, automatic_user, mailbox, settings
):
    settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX = 1
    settings.WEBMAIL_IMAP_TIMEOUT = 1
    ConnectionSlot.objects.create(
        mailbox=budget_of(mailbox.email),
        number=0,
        holder="elsewhere:4242:alive",
        expires_at=timezone.now() + timedelta(seconds=60),
    )
    started = time.monotonic()

    response = user_client.get("/webmail/")

    assert 1 <= time.monotonic() - started < 3
    assert response.status_code == 503
    page = response.content.decode()
    assert "already using all 1 connections it allows itself to your mailbox" in page
    assert "rejected" not in page
    assert ConnectionSlot.objects.get().wanted  # the holder is asked to give it up
    assert mailbox.dovecot.connections_by_user().get(mailbox.email, 0) == 0


def test_an_idle_connection_another_process_wants_is_given_up(
    transactional_db, dovecot, imap_settings, django_user_model
):
    user, mailbox = user_with_mailbox(django_user_model, dovecot, "frank")
    client = Client()
    client.force_login(user)
    assert client.get("/webmail/").status_code == 200
    assert len(pool) == 1

    ConnectionSlot.objects.update(wanted=True)  # as a waiting process does
    deadline = time.monotonic() + 5
    while ConnectionSlot.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not ConnectionSlot.objects.exists()
    assert len(pool) == 0
    assert dovecot.connections_by_user().get(mailbox.email, 0) == 0


def test_a_server_limit_refusal_gets_its_own_message_and_is_not_a_rejection(
    user_client, automatic_user, mailbox
):
    others = hold_server_connections(mailbox.email, 10)  # Dovecot's stock limit per user and IP
    try:
        response = user_client.get("/webmail/")
    finally:
        for other in others:
            other.close()

    page = response.content.decode()
    assert response.status_code == 503
    assert "too many open connections" in page
    assert "Your password is not the problem" in page
    assert "rejected your saved email password" not in page
    assert Profile.objects.get(user=automatic_user).email_password_rejected_at is None
    assert SignInFailure.objects.count() == 0
    assert not ConnectionSlot.objects.exists()


def test_it_tries_once_more_when_the_server_is_at_its_limit(user_client, automatic_user, mailbox):
    others = hold_server_connections(mailbox.email, 10)
    threading.Timer(0.5, others.pop().close).start()  # the phone lets one go
    try:
        response = user_client.get("/webmail/")
    finally:
        for other in others:
            other.close()

    assert response.status_code == 200
    assert "Grüße aus Köln" in response.content.decode()


def test_idle_connections_are_bounded_in_bytes(
    dovecot, imap_settings, django_user_model, db, settings
):
    users = [user_with_mailbox(django_user_model, dovecot, name) for name in ("gina", "hugo")]
    for _, mailbox in users:
        for number in range(30):
            mailbox.receive(f"Message {number}", text="x")
    clients = []
    for user, _ in users:
        clients.append(Client())
        clients[-1].force_login(user)
        clients[-1].get("/webmail/")
    assert len(pool) == 2
    one_mailbox = max(entry.size for entries in pool._idle.values() for entry in entries)

    settings.WEBMAIL_IMAP_POOL_BYTES = one_mailbox + one_mailbox // 2
    clients[0].get("/webmail/?page=1")  # given back last: the other one goes

    assert len(pool) == 1
    assert dovecot.connections_by_user() == {users[0][1].email: 1}


def test_reusing_a_connection_asks_nothing_of_the_slots_table(user_client, automatic_user, mailbox):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    user_client.get("/webmail/")
    with CaptureQueriesContext(db) as queries:
        assert user_client.get("/webmail/").status_code == 200

    assert not [q for q in queries.captured_queries if "connectionslot" in q["sql"]]
    assert ConnectionSlot.objects.count() == 1


def test_a_connection_never_given_back_is_closed_and_frees_its_slot(user, mailbox):
    server = imap.Server.from_settings()
    lent = pool.lend(
        (user.pk, "never given back"),
        budget_of(mailbox.email),
        lambda: imap.Mailbox(server).sign_in(mailbox.email, APP_PASSWORD),
    )
    assert mailbox.dovecot.connections_by_user()[mailbox.email] == 1

    del lent  # as when a bug drops a lease without releasing it
    gc.collect()
    deadline = time.monotonic() + 5
    while mailbox.dovecot.connections_by_user().get(mailbox.email) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert mailbox.dovecot.connections_by_user().get(mailbox.email, 0) == 0
    assert not pool._claimed  # no longer renewed: the slot can be taken again
