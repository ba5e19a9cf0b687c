"""When the mail server fails: a clear page with 502, 503 or 504 within the timeout, never 500."""

import threading
import time
import urllib.request

import pytest

from devtools.certs import make_certificates
from devtools.dovecot import free_port
from tests.conftest import APP_PASSWORD
from tests.webmail.fakes import FakeImapServer

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
