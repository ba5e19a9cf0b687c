"""Fault drills: each fails if anything is lost or leaks."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet
from django.db import connection, transaction
from django.test import Client

from settings_app import crypto
from settings_app.models import AuditEvent, Profile
from tests.conftest import APP_PASSWORD, make_user, save_password, user_with_mailbox
from tests.production.conftest import Browser, fetch, imap_env, session_cookie
from tests.production.proxy import Relay
from tests.production.test_pages import strict_policy
from tests.settings_app.test_edit import form_data

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_database_down_answers_503_then_recovers(serve, user):
    relay = Relay().start()
    try:
        app = serve(db_port=relay.port)
        cookie = session_cookie(user)
        status, page = fetch(f"{app.url}/settings/", cookie)
        assert status == 200
        # Static files by their hashed names, from WhiteNoise.
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page).group(1)
        assert fetch(app.url + stylesheet)[0] == 200

        relay.cut()
        status, headers, page = Browser(app.url, cookie).request("/settings/")
        health, _ = fetch(f"{app.url}/healthz")

        assert status == 503
        assert strict_policy(headers["Content-Security-Policy"])
        assert "no-store" in headers["Cache-Control"]
        assert "Client Manager is briefly unavailable" in page
        assert "Nothing you saved has been lost" in page
        assert "Traceback" not in page and "OperationalError" not in page
        assert health == 503

        relay.restore()
        assert fetch(f"{app.url}/healthz")[0] == 200
        status, page = fetch(f"{app.url}/settings/", cookie)
        assert status == 200 and "Contact Information" in page
    finally:
        relay.close()
    log = app.log_file.read_text()
    assert re.search(r"GET /settings/ 503 .* user=- ", log)


def test_a_missing_or_wrong_key_falls_back_and_keeps_everything(
    user_client, automatic_user, mailbox, settings
):
    token = Profile.objects.get(user=automatic_user).email_password_token
    for keys in ([Fernet.generate_key().decode()], []):
        settings.ENCRYPTION_KEYS = keys

        settings_page = user_client.get("/settings/").content.decode()
        webmail = user_client.get("/webmail/")

        assert "Needs re-entry" in settings_page
        assert webmail.status_code == 200
        assert 'name="password"' in webmail.content.decode()
        assert "rejected" not in webmail.content.decode()
    profile = Profile.objects.get(user=automatic_user)
    assert profile.email_password_token == token  # nothing overwritten or deleted
    assert profile.webmail_access == "automatic"
    assert profile.email_password_rejected_at is None


def test_manual_sign_in_without_keys_explains_instead_of_failing(
    user_client, user, mailbox, settings
):
    settings.ENCRYPTION_KEYS = []

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert response.status_code == 503
    assert "encryption is not set up" in response.content.decode()


def test_an_interrupted_rotation_run_again_leaves_every_secret_readable(
    database_url, django_user_model, settings
):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"staff{n}", email=f"staff{n}@example.test") for n in range(1500)
    )
    Profile.objects.bulk_create(
        Profile(
            user=user,
            email_password_token=crypto.encrypt(f"app-{user.pk}", owner=f"profile:{user.pk}"),
        )
        for user in users
    )
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": settings.SECRET_KEY,
        "ENCRYPTION_KEYS": f"{new},{old}",
        "DATABASE_URL": database_url(),
    }
    command = [sys.executable, "manage.py", "rotate_encryption_keys", "--batch-size", "20"]
    first = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE)
    while not AuditEvent.objects.exists() and first.poll() is None:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    rotated_before = AuditEvent.objects.count()
    assert 0 < rotated_before < 1500, "the first run must be cut off half-way"

    second = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)

    assert second.returncode == 0, second.stderr
    assert f"Rotated {1500 - rotated_before} secret(s)" in second.stdout
    settings.ENCRYPTION_KEYS = [new]
    for profile in Profile.objects.all():
        assert profile.get_email_password() == f"app-{profile.user_id}"


def test_two_tabs_saving_at_once_leave_one_whole_password(transactional_db, django_user_model):
    user = make_user(django_user_model, "alice")
    Profile.objects.create(user=user)
    for round_number in range(10):
        barrier = threading.Barrier(2)
        statuses = []
        candidates = [f"tab-a-{round_number}", f"tab-b-{round_number}"]

        def save(password, barrier=barrier, statuses=statuses):
            client = Client()
            client.force_login(user)
            barrier.wait()
            response = client.post(
                "/settings/edit/",
                form_data(user, email_password=password, webmail_access="automatic"),
            )
            statuses.append(response.status_code)
            connection.close()

        threads = [threading.Thread(target=save, args=(p,)) for p in candidates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert statuses == [302, 302]
        profile = Profile.objects.get(user=user)
        assert profile.get_email_password() in candidates
        assert profile.webmail_access == "automatic"


def test_two_tabs_removing_the_password_and_keeping_automatic_never_leave_automatic_without_one(
    database_url, django_user_model
):
    user = make_user(django_user_model, "alice")
    remove = form_data(user, clear_email_password="on", webmail_access="manual")
    keep_automatic = form_data(user, webmail_access="automatic")
    for first, second in [(remove, keep_automatic), (keep_automatic, remove)]:
        save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
        locked, release, statuses = threading.Event(), threading.Event(), {}

        def hold_the_row(locked=locked, release=release):
            with transaction.atomic():
                Profile.objects.select_for_update().get(user=user)
                locked.set()
                release.wait(30)
            connection.close()

        def tab(data, statuses=statuses):
            client = Client()
            client.force_login(user)
            response = client.post("/settings/edit/", data)
            statuses[data["webmail_access"]] = (response.status_code, response.content.decode())
            connection.close()

        # Both tabs validate against the row with its password, then queue for the row in
        # this order; the first tab's change lands before the second tab's.
        threads = [threading.Thread(target=hold_the_row)]
        threads[0].start()
        assert locked.wait(10)
        for waiting, data in enumerate([first, second], start=1):
            threads.append(threading.Thread(target=tab, args=(data,)))
            threads[-1].start()
            wait_for_lock_waiters(waiting)
        release.set()
        for thread in threads:
            thread.join(30)

        profile = Profile.objects.get(user=user)
        assert not (profile.signs_in_automatically and not profile.has_email_password)
        assert statuses["manual"][0] == 302
        assert profile.email_password_token == ""
        if first is remove:
            status, page = statuses["automatic"]
            assert status == 200 and "the saved one was removed meanwhile" in page


def wait_for_lock_waiters(count):
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"{count} request(s) never queued for the row")


def test_fifty_users_at_once_each_see_only_their_own_mailbox(serve, dovecot, django_user_model):
    users = []
    for number in range(50):
        user, mailbox = user_with_mailbox(django_user_model, dovecot, f"user{number}")
        mailbox.receive(f"Private mail of user{number}", text="secret")
        users.append((number, session_cookie(user)))
    app = serve(**imap_env(dovecot, WEBMAIL_IMAP_IDLE_SECONDS=3), workers=2, threads=16)
    barrier = threading.Barrier(len(users))

    def open_webmail(number_and_cookie):
        number, cookie = number_and_cookie
        barrier.wait()
        status, page = fetch(f"{app.url}/webmail/", cookie, timeout=60)
        return number, status, set(re.findall(r"Private mail of user(\d+)", page))

    for _ in range(2):  # a cold round, then a warm one
        with ThreadPoolExecutor(len(users)) as pool:
            results = list(pool.map(open_webmail, users))
        for number, status, seen in results:
            assert status == 200
            assert seen == {str(number)}

    deadline = time.monotonic() + 15
    while dovecot.connection_count() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert dovecot.connection_count() == 0
    app.stop()
    assert dovecot.connection_count() == 0
    assert "Traceback" not in app.log_file.read_text()


def test_under_gunicorn_no_mailbox_exceeds_its_connection_budget(serve, dovecot, django_user_model):
    people = []
    for number in range(10):
        user, mailbox = user_with_mailbox(django_user_model, dovecot, f"budget{number}")
        mailbox.receive(f"Private mail of budget{number}", text="secret")
        people.append((number, user, mailbox.email))
    # 50 browsers: five sessions of each user, as on phones, laptops and after signing in again.
    clients = [(number, session_cookie(user)) for number, user, _ in people for _ in range(5)]
    app = serve(**imap_env(dovecot), workers=3, threads=8)
    peak: dict[str, int] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for email, count in dovecot.connections_by_user().items():
                peak[email] = max(peak.get(email, 0), count)
            time.sleep(0.05)

    def open_webmail(number_and_cookie):
        number, cookie = number_and_cookie
        outcomes = []
        for _ in range(4):  # 200 opens in all
            status, page = fetch(f"{app.url}/webmail/", cookie, timeout=60)
            seen = set(re.findall(r"Private mail of budget(\d+)", page))
            outcomes.append((status, seen or re.sub(r"\s+", " ", page.partition("<main")[2])[:600]))
        return number, outcomes

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(open_webmail, clients))
    finally:
        done.set()
        sampler.join()

    for number, outcomes in results:
        assert outcomes == [(200, {str(number)})] * 4
    assert set(peak) == {email for _, _, email in people}
    assert max(peak.values()) <= 4, peak
    for _, user, _ in people:
        assert Profile.objects.get(user=user).email_password_rejected_at is None
    app.stop()
    assert "Traceback" not in app.log_file.read_text()
