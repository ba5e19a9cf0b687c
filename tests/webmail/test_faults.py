"""When the mail server fails: a clear page with 502, 503 or 504 within the timeout, never 500."""

import contextlib
import threading
import time
import urllib.request

import pytest

from devtools.certs import make_certificates
from devtools.dovecot import free_port
from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password
from tests.webmail.fakes import FakeImapServer
from webmail import imap
from webmail.models import SignInFailure
from webmail.pool import pool

TIMEOUT = 2


@pytest.fixture
def fake(request, dovecot, settings):
    with FakeImapServer(request.param, dovecot.root / "tls") as server:
        settings.WEBMAIL_IMAP_HOST = "localhost"
        settings.WEBMAIL_IMAP_PORT = server.port
        settings.WEBMAIL_IMAP_SECURITY = "starttls" if request.param == "no_starttls" else "ssl"
        settings.WEBMAIL_IMAP_CA_FILE = str(dovecot.ca_file)
        settings.WEBMAIL_IMAP_TIMEOUT = TIMEOUT
        yield server


def open_with_password(client):
    started = time.monotonic()
    response = client.post("/webmail/sign-in/", {"password": APP_PASSWORD, "next": "/webmail/"})
    return response, time.monotonic() - started


@pytest.mark.parametrize("fake", ["silent"], indirect=True)
def test_a_server_that_never_answers_times_out(user_client, user, fake):
    response, elapsed = open_with_password(user_client)

    assert response.status_code == 504
    assert "did not answer within 2 seconds" in response.content.decode()
    assert elapsed < TIMEOUT + 3


@pytest.mark.parametrize("fake", ["drip"], indirect=True)
def test_a_server_that_drips_bytes_times_out(user_client, user, fake):
    response, elapsed = open_with_password(user_client)

    assert response.status_code == 504
    assert elapsed < TIMEOUT + 3


@pytest.mark.parametrize("fake", ["garbage"], indirect=True)
def test_a_server_that_sends_garbage_is_a_bad_gateway(user_client, user, fake):
    response, elapsed = open_with_password(user_client)

    assert response.status_code == 502
    assert "did not understand" in response.content.decode()
    assert elapsed < TIMEOUT + 3


@pytest.mark.parametrize("fake", ["drop_mid_fetch"], indirect=True)
def test_a_server_that_drops_mid_fetch_is_a_bad_gateway(user_client, user, fake):
    response, _ = open_with_password(user_client)
    assert response.status_code == 302  # signing in worked

    listing = user_client.get("/webmail/")

    assert listing.status_code == 502
    assert "closed the connection unexpectedly" in listing.content.decode()


@pytest.mark.parametrize("fake", ["no_starttls"], indirect=True)
def test_starttls_that_is_not_offered_is_an_error_not_a_downgrade(user_client, user, fake):
    response, _ = open_with_password(user_client)

    assert response.status_code == 502
    assert "does not offer STARTTLS" in response.content.decode()
    assert not any(b"LOGIN" in line for line in fake.received)


def test_an_unreachable_server_is_unavailable(user_client, user, imap_settings):
    imap_settings.WEBMAIL_IMAP_PORT = free_port()

    response, elapsed = open_with_password(user_client)

    assert response.status_code == 503
    assert "refused the connection" in response.content.decode()
    assert elapsed < 1


def test_an_unknown_host_is_unavailable(user_client, user, imap_settings):
    imap_settings.WEBMAIL_IMAP_HOST = "mail.invalid"

    response, _ = open_with_password(user_client)

    assert response.status_code == 503


def test_an_untrusted_certificate_is_refused(user_client, user, mailbox, imap_settings, tmp_path):
    other_ca, _, _ = make_certificates(tmp_path)
    imap_settings.WEBMAIL_IMAP_CA_FILE = str(other_ca)

    response, _ = open_with_password(user_client)

    assert response.status_code == 502
    assert "certificate" in response.content.decode()
    assert "could not be verified" in response.content.decode()


def test_a_certificate_for_another_name_is_refused(user_client, user, settings, tmp_path):
    ca_file, _, _ = make_certificates(tmp_path, host_names=("mail.other.example",), ip_addresses=())
    with FakeImapServer("drop_mid_fetch", tmp_path) as server:
        settings.WEBMAIL_IMAP_HOST = "localhost"
        settings.WEBMAIL_IMAP_PORT = server.port
        settings.WEBMAIL_IMAP_CA_FILE = str(ca_file)

        response, _ = open_with_password(user_client)

        assert response.status_code == 502
        assert "certificate of localhost could not be verified" in response.content.decode()
        assert "mismatch" in response.content.decode()
        assert server.received == []  # no password was sent


def test_starttls_with_a_real_server_works(user_client, user, mailbox, imap_settings, dovecot):
    imap_settings.WEBMAIL_IMAP_SECURITY = "starttls"
    imap_settings.WEBMAIL_IMAP_PORT = dovecot.starttls_port

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD}, follow=True)

    assert "Grüße aus Köln" in response.content.decode()


@pytest.mark.parametrize("fake", ["silent"], indirect=True)
def test_the_rest_of_the_app_keeps_working_meanwhile(live_server, client, user, fake):
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    def get(path):
        request = urllib.request.Request(live_server.url + path, headers={"Cookie": cookie})
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as error:
            return error.code

    from settings_app.models import Profile
    from tests.conftest import save_password

    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    results = {}
    webmail = threading.Thread(target=lambda: results.update(webmail=get("/webmail/")))
    webmail.start()
    time.sleep(0.3)
    started = time.monotonic()
    results["settings"] = get("/settings/")
    settings_took = time.monotonic() - started
    webmail.join()

    assert results == {"webmail": 504, "settings": 200}
    assert settings_took < 1


# Refusals read by their codes (RFC 5530) --------------------------------------------------------


@pytest.fixture
def serve(dovecot, settings):
    """Start a fake IMAP server with the answers a test chooses, and point Webmail at it."""
    with contextlib.ExitStack() as stack:

        def start(**answers) -> FakeImapServer:
            server = stack.enter_context(FakeImapServer("imap", dovecot.root / "tls", **answers))
            settings.WEBMAIL_IMAP_HOST = "localhost"
            settings.WEBMAIL_IMAP_PORT = server.port
            settings.WEBMAIL_IMAP_SECURITY = "ssl"
            settings.WEBMAIL_IMAP_CA_FILE = str(dovecot.ca_file)
            settings.WEBMAIL_IMAP_TIMEOUT = TIMEOUT
            return server

        yield start
        pool.close_all()


@pytest.fixture
def saved_password_user(user):
    """`user` (alice@example.test) with Automatic access and the app password saved."""
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    return user


def logins(server: FakeImapServer) -> int:
    return sum(b" LOGIN " in line for line in server.received)


@pytest.mark.parametrize(
    "answer",
    [
        "NO [AUTHENTICATIONFAILED] Authentication failed.",
        "NO [AUTHORIZATIONFAILED] Not allowed to use this mailbox.",
        "NO LOGIN failed.",  # Microsoft gives no code at all
    ],
)
def test_it_reads_a_refused_password_as_rejected(user_client, saved_password_user, serve, answer):
    serve(replies={"LOGIN": answer})

    response = user_client.get("/webmail/")

    assert "The mail server rejected your saved email password" in response.content.decode()
    assert "app password" in response.content.decode()
    assert Profile.objects.get(user=saved_password_user).email_password_rejected_at is not None
    assert SignInFailure.objects.count() == 1


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ("NO [LIMIT] Too many connections", 503, "too many open connections"),
        ("NO [INUSE] Mailbox is in use", 503, "too many open connections"),
        ("NO [UNAVAILABLE] Backend down", 503, "cannot open your mailbox just now"),
        ("NO User is authenticated but not connected.", 503, "cannot open your mailbox just now"),
        ("NO [CONTACTADMIN] Call the help desk", 403, "ask your IT administrator"),
        ("NO [EXPIRED] Account expired", 403, "ask your IT administrator"),
        ("NO [PRIVACYREQUIRED] Use TLS", 403, "ask your IT administrator"),
    ],
)
def test_it_never_reads_other_refusals_as_a_wrong_password(
    user_client, saved_password_user, serve, answer, status, says
):
    server = serve(replies={"LOGIN": answer})

    response = user_client.get("/webmail/")
    again = user_client.get("/webmail/")

    page = response.content.decode()
    assert response.status_code == status
    assert says in page
    assert "rejected" not in page
    assert answer[3:] in page  # the server's own words, for the IT administrator
    assert Profile.objects.get(user=saved_password_user).email_password_rejected_at is None
    assert SignInFailure.objects.count() == 0
    assert again.status_code == status
    # The saved password is still used; a limit refusal is asked again once after a pause.
    assert logins(server) == (4 if says == "too many open connections" else 2)


def test_an_administrator_problem_does_not_offer_to_try_again(
    user_client, saved_password_user, serve
):
    serve(replies={"LOGIN": "NO [EXPIRED] Account expired"})

    page = user_client.get("/webmail/").content.decode()

    assert "Try again" not in page
    assert "Settings" in page


def test_a_typed_password_refused_for_a_limit_is_not_counted(user_client, user, serve):
    serve(replies={"LOGIN": "NO [LIMIT] Too many connections"})

    response, _ = open_with_password(user_client)

    assert response.status_code == 503
    assert "too many open connections" in response.content.decode()
    assert SignInFailure.objects.count() == 0


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("NO [LIMIT] Too many connections", "too many open connections"),
        ("NO [UNAVAILABLE] Backend down", "cannot open your mailbox just now"),
    ],
)
def test_a_folder_refused_after_sign_in_is_not_called_missing(
    user_client, saved_password_user, serve, answer, says
):
    serve(replies={"SELECT": answer})

    response = user_client.get("/webmail/")

    assert response.status_code == 503
    assert says in response.content.decode()
    assert "There is no folder" not in response.content.decode()


# Dovecot's mail_max_userip_connections as shipped: signed-in sessions per user and address.
DOVECOT_CONNECTION_LIMIT = 10


def test_dovecots_own_connection_limit_gets_its_own_message(
    user_client, saved_password_user, dovecot, imap_settings
):
    dovecot.add_user(saved_password_user.email, APP_PASSWORD)
    server = imap.Server.from_settings()
    held = []
    try:
        for _ in range(DOVECOT_CONNECTION_LIMIT):
            held.append(imap.Mailbox(server).sign_in(saved_password_user.email, APP_PASSWORD))
        response = user_client.get("/webmail/")
    finally:
        for mail in held:
            mail.close()

    assert response.status_code == 503
    assert "too many open connections" in response.content.decode()
    assert Profile.objects.get(user=saved_password_user).email_password_rejected_at is None
    assert SignInFailure.objects.count() == 0
    assert user_client.get("/webmail/").status_code == 200  # once the others are closed


def test_a_rejection_slower_than_the_timeout_is_still_a_rejection(
    user_client, user, dovecot, imap_settings
):
    dovecot.add_user(user.email, APP_PASSWORD)
    # Dovecot waits 2 seconds by its clock of whole seconds before saying no: over 1 s.
    imap_settings.WEBMAIL_IMAP_TIMEOUT = 1

    started = time.monotonic()
    response = user_client.post("/webmail/sign-in/", {"password": "not-the-password"})

    assert time.monotonic() - started > 1
    assert response.status_code == 200
    assert "The mail server rejected the password" in response.content.decode()
    assert "app password" in response.content.decode()
    assert SignInFailure.objects.count() == 1


def test_a_sign_in_waits_out_the_delay_a_colleagues_rejected_password_earned(
    user_client, user, dovecot, imap_settings
):
    # Webmail reaches the server from one address for all its users, and Dovecot delays every
    # sign-in from an address where a password was just rejected (4 s after one).
    dovecot.add_user(user.email, APP_PASSWORD)
    dovecot.add_user("colleague@example.test", APP_PASSWORD)
    colleague = imap.Mailbox(imap.Server.from_settings())
    with pytest.raises(imap.PasswordRejected):
        colleague.sign_in("colleague@example.test", "typo")
    colleague.close()

    started = time.monotonic()
    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert time.monotonic() - started > 3
    assert response.status_code == 302


def test_dovecot_with_broken_sign_in_is_unavailable_not_a_wrong_password(
    user_client, saved_password_user, dovecot, imap_settings
):
    dovecot.add_user(saved_password_user.email, APP_PASSWORD)
    password_file = dovecot.root / "passwd.d" / saved_password_user.email
    password_file.chmod(0)  # Dovecot cannot read the user's entry: its sign-in is broken
    time.sleep(1.1)  # Dovecot rereads a changed passwd-file at most once a second

    response = user_client.get("/webmail/")

    assert response.status_code == 503
    assert "cannot open your mailbox just now" in response.content.decode()
    assert Profile.objects.get(user=saved_password_user).email_password_rejected_at is None


# Security is enforced where connections are made ------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "STARTTLS", "none", ""])
def test_no_other_security_setting_ever_sends_a_password(
    user_client, user, dovecot, settings, security
):
    with FakeImapServer("no_starttls", dovecot.root / "tls") as server:
        settings.WEBMAIL_IMAP_HOST = "localhost"
        settings.WEBMAIL_IMAP_PORT = server.port
        settings.WEBMAIL_IMAP_SECURITY = security

        response, _ = open_with_password(user_client)

        assert response.status_code == 502
        assert "WEBMAIL_IMAP_SECURITY" in response.content.decode()
        assert server.received == []
        assert server.connections == []  # not even connected


def test_the_imap_module_refuses_an_unknown_security_setting(dovecot):
    server = imap.Server("localhost", dovecot.starttls_port, "tls", str(dovecot.ca_file), 2)

    with pytest.raises(imap.MailError, match="never sends a password unencrypted"):
        imap.Mailbox(server).sign_in("someone@example.test", APP_PASSWORD)


# Promises the README makes ------------------------------------------------------------------------


def test_a_server_that_hangs_after_sign_in_times_out(user_client, saved_password_user, serve):
    serve(hang=("SELECT",))

    started = time.monotonic()
    response = user_client.get("/webmail/")

    assert response.status_code == 504
    assert time.monotonic() - started < TIMEOUT + 2


def test_a_server_that_hangs_mid_download_times_out(user, serve):
    serve(body_size=10_000, hang_at_offset=4096)
    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(user.email, APP_PASSWORD)
    try:
        chunks = mail.stream("INBOX", 1, "", 4096)
        assert next(chunks) == b"x" * 4096

        started = time.monotonic()
        with pytest.raises(imap.TimedOut):
            next(chunks)
        assert time.monotonic() - started < TIMEOUT + 1
    finally:
        mail.close()


def test_a_download_has_an_overall_deadline(user, serve, settings):
    serve(body_size=100_000, delays={"FETCH": 0.4})  # each chunk well within the timeout
    settings.WEBMAIL_DOWNLOAD_TIMEOUT = 1
    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(user.email, APP_PASSWORD)
    received = 0
    started = time.monotonic()
    try:
        with pytest.raises(imap.TimedOut, match="took longer than 1 seconds"):
            for chunk in mail.stream("INBOX", 1, "", 4096):
                received += len(chunk)
    finally:
        mail.close()

    assert 0 < received < 100_000
    assert time.monotonic() - started < 1 + TIMEOUT


def test_a_session_password_the_server_later_rejects_asks_again(
    user_client, user, mailbox, dovecot
):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})
    assert user_client.get("/webmail/").status_code == 200
    dovecot.set_password(mailbox.email, "changed-on-the-server")
    pool.close_all()  # as after the idle time: the next page signs in again

    response = user_client.get("/webmail/")
    after = user_client.get("/webmail/")

    assert "The mail server rejected the password" in response.content.decode()
    assert "rejected" not in after.content.decode()  # the session password was dropped
    assert (
        "Enter your email password" in after.content.decode()
        or "password" in after.content.decode()
    )
    assert Profile.objects.get(user=user).email_password_rejected_at is None


def test_pooled_connections_are_replaced_when_the_server_changes(
    user_client, automatic_user, mailbox, serve
):
    assert user_client.get("/webmail/").status_code == 200  # signed in at Dovecot, kept

    server = serve()  # the server settings now name another server

    response = user_client.get("/webmail/")

    assert response.status_code == 200
    assert logins(server) == 1
