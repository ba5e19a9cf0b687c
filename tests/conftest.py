"""Shared fixtures: encryption keys, users, signed-in clients, a real Dovecot with mailboxes."""

import itertools
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from devtools import dovecot as dovecot_server
from devtools.identity import IdentityProvider
from devtools.maildir import deliver, make_folder
from devtools.seed import PIXEL_PNG, message
from settings_app.models import Profile
from webmail.pool import pool

# Made fresh for each run; real secrets never live in the tests.
TEST_KEY = Fernet.generate_key().decode()
APP_PASSWORD = "qwer-tyui-" + Fernet.generate_key().decode()[:12]
USER_PASSWORD = "Correct-horse-battery-1"


def pytest_configure(config):
    """Give the test run a secret key and an encryption key (settings take them from the env)."""
    from django.conf import settings

    settings.SECRET_KEY = "tests-" + TEST_KEY
    settings.ENCRYPTION_KEYS = [TEST_KEY]
    # Sign-in passwords are hashed on every created user; a slow hasher only slows the tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The test client speaks plain HTTP; everything else stays as in production.
    settings.SECURE_SSL_REDIRECT = False
    # Static files as production serves them: hashed names from a manifest.
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)


def make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(
        username=username,
        email=f"{username}@example.test",
        password=USER_PASSWORD,
        first_name=username.title(),
        last_name="Example",
        **extra,
    )


@pytest.fixture
def user(db, django_user_model):
    return make_user(django_user_model, "alice")


@pytest.fixture
def other_user(db, django_user_model):
    return make_user(django_user_model, "bob")


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@example.test", password=USER_PASSWORD
    )


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def save_password(user, password=APP_PASSWORD, access=Profile.WebmailAccess.MANUAL):
    profile, _ = Profile.objects.get_or_create(user=user)
    profile.set_email_password(password)
    profile.webmail_access = access
    profile.save()
    return profile


# Each test is its own client of the mail servers -------------------------------------------------

# The test Dovecots keep their stock sign-in delays: a rejected password is answered after 2 s,
# and every later sign-in from the same address waits 4 s, doubling up to 15 s, until one works
# (SMTP AUTH through Postfix too: Postfix passes on its client's address). So that the delay one
# test earns never reaches the next, as its rows in the database never do, each test connects to
# the mail servers from a loopback address of its own (Linux answers all of 127.0.0.0/8).
_mail_ports: set[int] = set()
_client_addresses = (
    f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in itertools.count(2) if 0 < n & 255 < 255
)


def _connect_from_test_addresses(*ports: int) -> None:
    """Have each test's connections to `ports` (its mail servers, on loopback) come from the
    test's own address (the `mail_client_address` fixture)."""
    _mail_ports.update(ports)


@pytest.fixture(autouse=True)
def mail_client_address(monkeypatch):
    """Connect to the test mail servers from a loopback address no other test uses.

    Only the mail servers: PostgreSQL, gunicorn and the live server still see 127.0.0.1.
    Calling the fixture's value moves to a fresh address, for a test that repeats itself
    (hypothesis) and wants each round to start as a first try.
    """
    current = [next(_client_addresses)]
    create_connection = socket.create_connection

    def from_the_tests_address(
        address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs
    ):
        host, port = address[:2]
        if source_address is None and port in _mail_ports and host in ("localhost", "127.0.0.1"):
            source_address = (current[0], 0)
        return create_connection(address, timeout, source_address, **kwargs)

    def move() -> None:
        current[0] = next(_client_addresses)

    monkeypatch.setattr(socket, "create_connection", from_the_tests_address)
    return move


def _start_dovecot(tmp_path_factory, flavour: str):
    try:
        dovecot_server.ensure_installed(may_install=False)
    except dovecot_server.DovecotMissing as exc:
        pytest.fail(f"{exc} (make test installs it)")
    return dovecot_server.Dovecot(tmp_path_factory.mktemp(flavour), flavour=flavour)


@pytest.fixture(scope="session")
def stock_dovecot(tmp_path_factory):
    """A real Dovecot for the whole run (`make test` installs dovecot-imapd)."""
    with _start_dovecot(tmp_path_factory, "dovecot") as server:
        _connect_from_test_addresses(server.port, server.starttls_port)
        yield server


@pytest.fixture(scope="session")
def dovecot(stock_dovecot):
    """The mail server tests use: Dovecot as shipped, unless a module asks for each flavour."""
    return stock_dovecot


@pytest.fixture(scope="session")
def exchange_dovecot(tmp_path_factory):
    """A real Dovecot trimmed to look like Exchange: its folder names without special-use
    flags, and no LIST-STATUS, MOVE or SPECIAL-USE, so Webmail's fallbacks meet a real server."""
    with _start_dovecot(tmp_path_factory, "exchange") as server:
        _connect_from_test_addresses(server.port, server.starttls_port)
        yield server


def each_flavour(request):
    """For a test module's own `dovecot` fixture: run its tests on both kinds of server.

    @pytest.fixture(params=list(FLAVOURS))
    def dovecot(request):
        return each_flavour(request)
    """
    return request.getfixturevalue(FLAVOURS[request.param])


# Test ids and the session fixtures that run each kind of server.
FLAVOURS = {"dovecot": "stock_dovecot", "exchange": "exchange_dovecot"}


@pytest.fixture
def imap_settings(settings, dovecot):
    """Point Webmail at the test Dovecot; close pooled connections after the test."""
    settings.WEBMAIL_IMAP_HOST = dovecot.host
    settings.WEBMAIL_IMAP_PORT = dovecot.port
    settings.WEBMAIL_IMAP_SECURITY = "ssl"
    settings.WEBMAIL_IMAP_CA_FILE = str(dovecot.ca_file)
    settings.WEBMAIL_IMAP_TIMEOUT = 5
    yield settings
    pool.close_all()


_mailbox_numbers = itertools.count(1)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass
class TestMailbox:
    email: str
    maildir: Path
    dovecot: object

    def folder(self, use: str) -> str:
        """The name of this server's folder for `use` ("trash", "sent", "drafts", "junk")."""
        return self.dovecot.folder_names[use]

    def deliver(self, raw: bytes, **options) -> None:
        deliver(self.maildir, raw, **options)
        self.dovecot.give_to_dovecot(self.maildir)

    def receive(
        self,
        subject: str,
        *,
        sender=("Sender", "sender@example.org"),
        text="Hello.",
        folder="INBOX",
        seen=False,
        flagged=False,
        when=NOW,
        **parts,
    ) -> None:
        """Deliver a message addressed to this mailbox (parts: html, attachments, ...)."""
        raw = message(sender=sender, to=self.email, subject=subject, text=text, when=when, **parts)
        self.deliver(raw, folder=folder, seen=seen, flagged=flagged, when=when)


@pytest.fixture
def mailbox(dovecot, imap_settings, user) -> TestMailbox:
    """A fresh mailbox for `user` (its own address), with the app password as its password.

    The Inbox holds 60 messages: number 1 is the oldest, 60 the newest (UIDs follow).
    Message 58 is HTML with remote and inline images, 59 has an attachment, 60 has a
    non-ASCII subject; 3 and 60 are flagged; 1 to 50 are read. There is an empty Archive
    folder and a non-ASCII folder Kunden/Müller holding one message.
    """
    email = f"staff{next(_mailbox_numbers)}@practice.example"
    user.email = email
    user.save(update_fields=["email"])
    maildir = dovecot.add_user(email, APP_PASSWORD)
    test_mailbox = TestMailbox(email, maildir, dovecot)
    for folder in ["Archive", "Kunden/Müller"]:
        make_folder(maildir, folder)
    for number in range(1, 61):
        when = NOW - timedelta(hours=61 - number)
        kwargs = {"text": f"Body of message {number}.\nSecond line."}
        subject = f"Message {number}"
        if number == 58:
            subject = "Newsletter with pictures"
            kwargs["html"] = (
                "<p>Hello <b>reader</b></p>"
                '<p><img src="https://tracker.example/pixel.gif" alt="tracker"></p>'
                '<p><img src="cid:logo@example" alt="logo"></p>'
            )
            kwargs["inline_images"] = {"logo@example": PIXEL_PNG}
        elif number == 59:
            subject = "Signed form attached"
            kwargs["attachments"] = [("signed form.pdf", b"%PDF-1.4 test\n", "application/pdf")]
        elif number == 60:
            subject = "Grüße aus Köln – Übersicht"
        deliver(
            maildir,
            message(
                sender=(f"Sender {number}", f"sender{number}@example.org"),
                to=email,
                subject=subject,
                when=when,
                **kwargs,
            ),
            seen=number <= 50,
            flagged=number in (3, 60),
            when=when,
        )
    dovecot.give_to_dovecot(maildir)  # once, not after each of the 60
    test_mailbox.receive(
        "Akte Müller", sender=("Frau Müller", "mueller@example.de"), text="Unterlagen.",
        folder="Kunden/Müller",
    )  # fmt: skip
    return test_mailbox


def user_with_mailbox(django_user_model, dovecot, name: str):
    """A user with a mailbox of their own, its password saved and Webmail access Automatic."""
    user = make_user(django_user_model, name)
    user.email = f"{name}-{next(_mailbox_numbers)}@practice.example"
    user.save()
    mailbox = TestMailbox(user.email, dovecot.add_user(user.email, APP_PASSWORD), dovecot)
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    return user, mailbox


@pytest.fixture
def automatic_user(user, mailbox):
    """`user` with the mailbox's password saved and Webmail access Automatic."""
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    return user


# Microsoft 365 sign-in: a stand-in identity provider and a Dovecot that takes only its tokens.


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory):
    with IdentityProvider(tmp_path_factory.mktemp("identity")) as provider:
        yield provider


@pytest.fixture(scope="session")
def oauth_dovecot(tmp_path_factory, identity_provider):
    """A real Dovecot like Exchange Online: XOAUTH2 only, every password LOGIN refused."""
    try:
        dovecot_server.ensure_installed(may_install=False)
    except dovecot_server.DovecotMissing as exc:
        pytest.fail(f"{exc} (make test installs it)")
    server = dovecot_server.Dovecot(tmp_path_factory.mktemp("dovecot-oauth"))
    server.start(introspection_url=identity_provider.introspection_url)
    _connect_from_test_addresses(server.port, server.starttls_port)
    yield server
    server.stop()


@pytest.fixture
def microsoft_settings(settings, identity_provider, oauth_dovecot):
    """Microsoft 365 sign-in set up against the stand-in; Webmail on the OAuth Dovecot."""
    identity_provider.reset()
    settings.MICROSOFT_CLIENT_ID = identity_provider.client_id
    settings.MICROSOFT_CLIENT_SECRET = identity_provider.client_secret
    settings.MICROSOFT_TENANT = identity_provider.tenant
    settings.MICROSOFT_AUTHORITY = identity_provider.authority
    settings.MICROSOFT_CA_FILE = str(identity_provider.ca_file)
    settings.MICROSOFT_TIMEOUT = 3
    settings.WEBMAIL_IMAP_HOST = oauth_dovecot.host
    settings.WEBMAIL_IMAP_PORT = oauth_dovecot.port
    settings.WEBMAIL_IMAP_SECURITY = "ssl"
    settings.WEBMAIL_IMAP_CA_FILE = str(oauth_dovecot.ca_file)
    settings.WEBMAIL_IMAP_TIMEOUT = 5
    yield settings
    pool.close_all()
    identity_provider.reset()


@pytest.fixture
def microsoft_user(db, django_user_model, oauth_dovecot, microsoft_settings):
    """A staff user whose mailbox lives on the OAuth Dovecot, Email sign-in Microsoft 365,
    Webmail access Automatic, not yet connected. Its Inbox holds one message."""
    user = make_user(django_user_model, "carol")
    user.email = f"carol-{next(_mailbox_numbers)}@practice.example"
    user.save()
    maildir = oauth_dovecot.add_user(user.email, APP_PASSWORD)
    mailbox = TestMailbox(user.email, maildir, oauth_dovecot)
    mailbox.receive("Quarterly review", text="See you on Monday.")
    profile, _ = Profile.objects.get_or_create(user=user)
    profile.email_sign_in = Profile.EmailSignIn.MICROSOFT
    profile.webmail_access = Profile.WebmailAccess.AUTOMATIC
    profile.save()
    return user


# Sending mail -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postfix(dovecot, tmp_path_factory):
    """A real Postfix taking submissions for the test Dovecot's users (`make test` installs it)."""
    from devtools import postfix as postfix_server

    try:
        postfix_server.ensure_installed()
    except postfix_server.PostfixMissing as exc:
        pytest.fail(f"{exc} (make test installs it)")
    server = postfix_server.Postfix(
        tmp_path_factory.mktemp("postfix"), dovecot, domains=("practice.example",)
    )
    with server:
        _connect_from_test_addresses(server.port)
        yield server


@pytest.fixture(scope="session")
def oauth_postfix(oauth_dovecot, tmp_path_factory):
    """A real Postfix whose SMTP AUTH goes through the OAuth Dovecot: XOAUTH2 with the stand-in's
    tokens, every password refused (like Exchange Online with basic sign-in off)."""
    from devtools import postfix as postfix_server

    try:
        postfix_server.ensure_installed()
    except postfix_server.PostfixMissing as exc:
        pytest.fail(f"{exc} (make test installs it)")
    server = postfix_server.Postfix(
        tmp_path_factory.mktemp("postfix-oauth"), oauth_dovecot, domains=("practice.example",)
    )
    with server:
        _connect_from_test_addresses(server.port)
        yield server


@pytest.fixture
def smtp_settings(settings, imap_settings, postfix):
    """Point sending at the test Postfix; call after the test's mailboxes exist."""
    settings.WEBMAIL_SMTP_HOST = postfix.host
    settings.WEBMAIL_SMTP_PORT = postfix.port
    settings.WEBMAIL_SMTP_SECURITY = "starttls"
    settings.WEBMAIL_SMTP_CA_FILE = str(postfix.ca_file)
    settings.WEBMAIL_SMTP_TIMEOUT = 5
    settings.WEBMAIL_SENT_COPY = "auto"
    return settings
