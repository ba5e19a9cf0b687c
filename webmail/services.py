"""Signing staff in to their mailbox: which password to use, throttling, remembering rejections."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from clientmanager.middleware import client_ip
from settings_app import connection, crypto, microsoft
from settings_app.models import Profile, profile_for
from settings_app.services import RotationResult
from webmail import smtp
from webmail.imap import Mailbox, PasswordRejected, Server, TokenRejected, TooManyConnections
from webmail.models import SignInFailure, SignInLimited
from webmail.pool import budget_name, pool, pool_key

SESSION_PASSWORD = "webmail_password"
# Threads that open IMAP connections while the request thread records the sign-in attempt.
_connecting = ThreadPoolExecutor(max_workers=8, thread_name_prefix="imap-connect")
# How long to wait before asking again when the server refuses for its connection limit.
LIMIT_RETRY_SECONDS = 2


class SignInNeeded(Exception):
    """No usable password for this visit: Webmail must ask for one."""


class NoEmailAddress(SignInNeeded):
    """The user has no email address to sign in with."""

    def __init__(self):
        super().__init__("Add your email address in Settings to use Webmail.")


class PasswordCannotBeKept(Exception):
    """Encryption is not set up, so a manually entered password cannot be kept for the session."""


# Why a visit cannot sign in to the mail server, for IMAP or SMTP alike: no usable password,
# a Microsoft 365 connection to make or renew, or Microsoft's sign-in service down or slow.
SIGN_IN_FAILURES = (SignInNeeded, connection.MicrosoftSignInNeeded, microsoft.MicrosoftError)


class Throttled(Exception):
    def __init__(self, retry_after: timedelta):
        minutes = max(1, round(retry_after.total_seconds() / 60))
        super().__init__(
            "Too many passwords were rejected in a short time. To keep your email account from "
            f"being locked, Webmail will not try again for {minutes} minute"
            f"{'' if minutes == 1 else 's'}."
        )


def _session_owner(user) -> str:
    return f"webmail-session:{user.pk}"


@sensitive_variables("password")
def session_password_store(request, password: str) -> None:
    """Keep a manually entered password, encrypted, for this browser session only."""
    request.session[SESSION_PASSWORD] = crypto.encrypt(password, owner=_session_owner(request.user))


def session_password_drop(request) -> None:
    request.session.pop(SESSION_PASSWORD, None)
    connection.session_drop(request)
    pool.drop_user(request.user.pk)


@dataclass
class Credentials:
    username: str
    password: str
    source: str  # "session" or "saved"

    def __repr__(self):
        return f"Credentials(username={self.username!r}, source={self.source!r})"


@sensitive_variables("password")
def _credentials(request, profile: Profile) -> Credentials:
    """The password this visit signs in with: this session's, else the saved one if Automatic."""
    username = request.user.email
    if not username:
        raise NoEmailAddress
    token = request.session.get(SESSION_PASSWORD)
    if token:
        try:
            password = crypto.decrypt(
                token, owner=_session_owner(request.user), max_age=settings.SESSION_COOKIE_AGE
            )
        except crypto.DecryptionError:
            request.session.pop(SESSION_PASSWORD, None)
        else:
            return Credentials(username, password, "session")
    if profile.signs_in_automatically and profile.email_password_rejected_at is None:
        try:
            return Credentials(username, profile.get_email_password(), "saved")
        except crypto.DecryptionError:
            pass
    raise SignInNeeded("Enter your email password to open Webmail.")


@sensitive_variables("credentials", "token")
def sending_login(request) -> smtp.Login:
    """Who sends this visit's mail: the account Webmail's IMAP signs in with, the same way.

    With Microsoft 365 sign-in, the access token (XOAUTH2); else this session's or the saved
    password. Raises one of SIGN_IN_FAILURES.
    """
    profile = profile_for(request.user)
    if not profile.signs_in_with_microsoft:
        credentials = _credentials(request, profile)
        return smtp.Login(username=credentials.username, password=credentials.password)
    if not request.user.email:
        raise NoEmailAddress
    token = connection.access_token(request, profile)
    return smtp.Login(username=request.user.email, access_token=token)


def sending_token_refused(request) -> None:
    """The mail server refused the access token for sending: the next sign-in refreshes it."""
    connection.access_token_forget(request, profile_for(request.user))


@dataclass
class Lease:
    """A signed-in mailbox lent to one request; release() hands it back to the pool."""

    mailbox: Mailbox
    key: tuple
    request: object
    commands_before: int
    released: bool = False

    def release(self) -> None:
        """Hand the mailbox back (once, however often this is called)."""
        if self.released:
            return
        self.released = True
        # For the request's log line: how many IMAP commands this request sent.
        used = self.mailbox.commands - self.commands_before
        self.request.imap_commands = getattr(self.request, "imap_commands", 0) + used
        pool.give_back(self.key, self.mailbox)


@sensitive_variables("credentials", "password")
def mailbox_lease(request, *, password: str | None = None) -> Lease:
    """Lend a signed-in mailbox for `request.user`: reused when possible, else signed in.

    A connection is shared by every browser session of the user signing in with the same
    password, and new ones open only within the mailbox's connection budget (webmail.pool).
    With `password` (the manual form), that password is tried instead of the stored ones.
    Raises SignInNeeded, Throttled or an imap.MailError.
    """
    profile = profile_for(request.user)
    if password is None and profile.signs_in_with_microsoft:
        return _microsoft_lease(request, profile)
    if password is None:
        credentials = _credentials(request, profile)
    else:
        if not request.user.email:
            raise NoEmailAddress
        credentials = Credentials(request.user.email, password, "form")
    server = Server.from_settings()
    key = pool_key(
        user_id=request.user.pk,
        server=server,
        username=credentials.username,
        password=credentials.password,
    )
    opened = []

    def connect() -> Mailbox:
        opened.append(_sign_in(request, profile, server, credentials))
        return opened[0]

    mailbox = pool.lend(key, budget_name(server, credentials.username), connect)
    commands_before = 0 if opened else mailbox.commands
    if credentials.source == "form" and not opened:
        # Another tab signed in with the same password a moment ago: it is just as good.
        session_password_store(request, credentials.password)
    mailbox.reset()
    return Lease(mailbox, key, request, commands_before)


@sensitive_variables("credentials")
def _sign_in(request, profile: Profile, server: Server, credentials: Credentials) -> Mailbox:
    """Sign in, within the limits on attempts, and remember what happened.

    Every attempt, whatever the password's source, is recorded before it is tried, so
    attempts sent at the same moment cannot slip under the limit, and saving guesses in
    Settings is no way around it. Only a refused password keeps counting: when the server
    fails or refuses for another reason (a limit on connections, say) the attempt is forgotten.
    """
    mailbox = Mailbox(server, client_address=client_ip(request))
    # The TLS handshake takes about as long as recording the attempt, so both happen at once;
    # the password is sent only once the attempt is recorded.
    connected = _connecting.submit(mailbox.connect)
    try:
        attempt = SignInFailure.attempt(credentials.username, request.user)
    except BaseException as exc:
        with suppress(Exception):
            connected.result()
        mailbox.close()
        if isinstance(exc, SignInLimited):
            raise Throttled(exc.retry_after) from None
        raise
    try:
        try:
            connected.result()
            mailbox.sign_in(credentials.username, credentials.password)
        except TooManyConnections:
            # Other programs hold the server's limit; one of them may well be closing.
            mailbox.close()
            time.sleep(LIMIT_RETRY_SECONDS)
            mailbox = Mailbox(server, client_address=client_ip(request))
            mailbox.sign_in(credentials.username, credentials.password)
    except PasswordRejected as exc:
        mailbox.close()
        if credentials.source == "saved":
            profile.email_password_rejected_at = timezone.now()
            profile.save(update_fields=["email_password_rejected_at"])
        elif credentials.source == "session":
            request.session.pop(SESSION_PASSWORD, None)
        exc.source = credentials.source
        raise
    except BaseException:
        mailbox.close()
        SignInFailure.withdraw(attempt)  # the server failed or refused for a limit
        raise
    SignInFailure.forget(credentials.username, request.user)
    if credentials.source == "form":
        session_password_store(request, credentials.password)
    if profile.email_password_rejected_at is not None:
        profile.email_password_rejected_at = None
        profile.save(update_fields=["email_password_rejected_at"])
    return mailbox


# Microsoft 365 sign-in (XOAUTH2) --------------------------------------------------------------
# No password is sent, so nothing here counts toward the sign-in limit or marks a password as
# rejected. The pool key holds a keyed digest of the access token, never the token itself.


@sensitive_variables("token")
def _microsoft_lease(request, profile: Profile) -> Lease:
    if not request.user.email:
        raise NoEmailAddress
    token = connection.access_token(request, profile)
    server = Server.from_settings()
    key = pool_key(
        user_id=request.user.pk,
        server=server,
        username=request.user.email,
        password="xoauth2\x00" + token,
    )
    opened = []

    @sensitive_variables("token")
    def connect() -> Mailbox:
        mailbox = Mailbox(server, client_address=client_ip(request))
        try:
            mailbox.sign_in_oauth2(request.user.email, token)
        except TokenRejected:
            mailbox.close()
            # Refreshed on the next visit, whatever its expiry said (a clock off, a revocation).
            connection.access_token_forget(request, profile)
            raise
        except BaseException:
            mailbox.close()
            raise
        opened.append(mailbox)
        return mailbox

    mailbox = pool.lend(key, budget_name(server, request.user.email), connect)
    commands_before = 0 if opened else mailbox.commands
    mailbox.reset()
    return Lease(mailbox, key, request, commands_before)


@contextmanager
def mailbox_open(request) -> Iterator[Mailbox]:
    """Use a signed-in mailbox for the block, within the server timeout."""
    lease = mailbox_lease(request)
    try:
        with lease.mailbox.deadline():
            yield lease.mailbox
    finally:
        lease.release()


@sensitive_variables("password")
def mailbox_sign_in(request, password: str) -> None:
    """Check a manually entered password with the server and keep it for this session."""
    if crypto.keys_problem():
        raise PasswordCannotBeKept(
            "Webmail cannot keep your password for this session because encryption is not set "
            "up on this server. Please tell your administrator."
        )
    session_password_drop(request)
    mailbox_lease(request, password=password).release()


def session_tokens_rotate() -> RotationResult:
    """Re-encrypt the manual passwords kept in sessions under the first key."""
    result = RotationResult()
    store = SessionStore()
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = session.get_decoded()
        changed = False
        # The typed password and a Manual Microsoft sign-in are the secrets sessions keep.
        for name in (SESSION_PASSWORD, connection.SESSION_KEY):
            token = data.get(name)
            if not token:
                continue
            if crypto.is_current(token):
                result.current += 1
                continue
            try:
                data[name] = crypto.rotate(token)
            except crypto.DecryptionError:
                result.unreadable += 1
                continue
            changed = True
        if not changed:
            continue
        # Only replace what was read: a session that changed meanwhile keeps its own data.
        result.rotated += Session.objects.filter(
            session_key=session.session_key, session_data=session.session_data
        ).update(session_data=store.encode(data))
    return result
