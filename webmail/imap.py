"""The one door to IMAP: connections, commands and the few errors the views explain.

Nothing else imports imapclient. Connections always use TLS (implicit, or STARTTLS that the
server must offer) with verified certificates and host names. Each piece of work runs under a
deadline: a watchdog shuts the socket when it passes, so a server that hangs or drips bytes
cannot hold a request longer than the configured timeout.
"""

import heapq
import imaplib
import itertools
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from imapclient import IMAPClient, imap4, imap_utf7, tls
from imapclient import exceptions as imap_errors
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_message_list, parse_response
from imapclient.response_types import Address, Envelope

from clientmanager.reporting import DropSecretFrames
from webmail.mime import (
    CONTROL,
    Message,
    Part,
    address,
    addresses,
    as_text,
    aware,
    decode_part,
    decode_words,
    pairs,
    read_header,
    read_structure,
)

PAGE_SIZE = 50
LIST_ITEMS = ["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE"]
# "n (UID u FLAGS (...))" in either order: the one answer read on every page view.
_FLAGS_ANSWER = re.compile(rb"^(\d+) \((?=.*\bUID (\d+))(?=.*\bFLAGS \(([^)]*)\)).*\)$")
# Envelopes a connection keeps for reuse; past this many it starts again.
SUMMARY_CACHE_SIZE = 5_000
MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office.com", "microsoft.com")
SPECIAL_USE = ("\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive")
SPECIAL_ORDER = {"\\Drafts": 1, "\\Sent": 2, "\\Trash": 3}
SPECIAL_NAMES = {
    "drafts": "\\Drafts",
    "sent": "\\Sent",
    "sent items": "\\Sent",
    "sent messages": "\\Sent",
    "trash": "\\Trash",
    "deleted items": "\\Trash",
    "deleted messages": "\\Trash",
    "junk": "\\Junk",
    "junk email": "\\Junk",
    "spam": "\\Junk",
    "archive": "\\Archive",
}
SECURITY_CHOICES = ("ssl", "starttls")
# Servers hold back the answer to a password to slow guessing. Dovecot as shipped says "no"
# after 2 s, and after rejections from one address (Webmail is one address for all its users)
# waits up to 15 s more before checking the next password, a right one too. The answer to a
# password gets this long on top of the timeout, so a slow answer is read, not taken for a
# server that hangs.
REJECTION_DELAY_ALLOWANCE = 20.0
# Without LIST-STATUS each folder's counts cost a STATUS command: they are kept this long per
# connection, and fetched within this share of the timeout (the rest show no count for now).
STATUS_TTL_SECONDS = 30.0
STATUS_SHARE_OF_TIMEOUT = 0.3
# An opened message's HTML waits this long, with the connection, for its body frame's request.
BODY_KEEP_SECONDS = 60.0
BODIES_KEPT = 4
SEARCH_FIELDS = {"sender": "FROM", "subject": "SUBJECT", "text": "TEXT"}
_PART_NUMBER = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,9}$")


# Errors ---------------------------------------------------------------------------------------


class MailError(Exception):
    """A failure the user is told about in plain words, with an HTTP status for the page."""

    status = 502
    title = "The mail server could not be used"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PasswordRejected(MailError):
    status = 200
    title = "The mail server rejected the password"
    source = "form"  # which password: "form", "session" or "saved" (webmail.services sets it)


class TokenRejected(MailError):
    """The server refused an OAuth access token (XOAUTH2): not a password, never counted."""

    status = 403
    title = "The mail server did not accept the Microsoft sign-in"


class TooManyConnections(MailError):
    """The server refused for a limit on connections ([LIMIT], [INUSE]): not the password."""

    status = 503
    title = "Your mailbox has too many open connections"


class TemporarilyUnavailable(MailError):
    """The server cannot serve the mailbox just now ([UNAVAILABLE], Exchange's "not connected")."""

    status = 503
    title = "Your mailbox is not available just now"


class AccountProblem(MailError):
    """The server refused for a reason only an administrator can fix ([CONTACTADMIN], [EXPIRED],
    [PRIVACYREQUIRED]): not the password."""

    status = 403
    title = "The mail server refused to open your mailbox"


class ServerUnreachable(MailError):
    status = 503
    title = "The mail server cannot be reached"


class CertificateProblem(MailError):
    status = 502
    title = "The mail server's certificate could not be trusted"


class TimedOut(MailError):
    status = 504
    title = "The mail server did not answer in time"


class ProtocolError(MailError):
    status = 502
    title = "The mail server gave an answer Webmail did not understand"


class NotFound(MailError):
    status = 404
    title = "Not found"


# RFC 5530 response codes that say why a server refused, when it was not the password.
_LIMIT_CODES = {"LIMIT", "INUSE"}
_UNAVAILABLE_CODES = {"UNAVAILABLE", "SERVERBUG"}
_ADMIN_CODES = {"CONTACTADMIN", "EXPIRED", "PRIVACYREQUIRED"}
# Exchange answers this, with no code, when the mailbox behind a good sign-in cannot be reached.
_EXCHANGE_NOT_CONNECTED = "user is authenticated but not connected"
_CODE = re.compile(r"\[([A-Za-z-]+)[\] ]")
_COMMAND_FAILED = re.compile(r"^[a-z]+ failed: ")  # how imapclient starts its error text
_BYTES_REPR = re.compile(r"^b(['\"])(.*)\1$")  # imaplib sometimes gives the answer as b'...'


def response_code(text: str) -> str:
    """The RFC 5530 code of a server answer ("LIMIT" for "NO [LIMIT] Too many"), or ""."""
    match = _CODE.search(text[:200])
    return match.group(1).upper() if match else ""


def _refusal(text: str, host: str) -> MailError | None:
    """The error a refusal with `text` stands for, if its code says it is not the password."""
    code = response_code(text)
    said = _server_said(text)
    if code in _LIMIT_CODES:
        return TooManyConnections(
            f"Your mailbox has too many open connections to {host} just now (Webmail, phones and "
            "mail programs on computers all count), so the server would not open another. "
            "Your password is not the problem. Please try again in a minute; if this keeps "
            f"happening, close mail programs you no longer use or ask your IT administrator.{said}"
        )
    if code in _UNAVAILABLE_CODES or _EXCHANGE_NOT_CONNECTED in text.lower():
        return TemporarilyUnavailable(
            f"{host} cannot open your mailbox just now. This is usually a passing problem at the "
            f"mail server, not your password: please try again in a few minutes.{said}"
        )
    if code in _ADMIN_CODES:
        return AccountProblem(
            f"{host} refused to open your mailbox for a reason only your IT administrator can "
            "fix (the account may be expired, locked or need a setting changed). Your password "
            f"was not the problem: please ask your IT administrator.{said}"
        )
    return None


def _server_said(text: str) -> str:
    """The server's own words, briefly, for the IT administrator."""
    words = _COMMAND_FAILED.sub("", CONTROL.sub(" ", text).strip())
    words = _BYTES_REPR.sub(r"\2", words)
    if not words:
        return ""
    return f" (The server said: “{words[:200]}”.)"


class UnsafeInput(ValueError):
    """User text that must not reach an IMAP command (control characters, say)."""


def pages_for(count: int) -> int:
    """How many pages `count` messages fill (at least one, even when empty)."""
    return max(1, -(-count // PAGE_SIZE))


def check_text(value: str, *, what: str, max_length: int = 200) -> str:
    """Return `value` if it may be sent to the server; raise UnsafeInput otherwise."""
    if CONTROL.search(value):
        raise UnsafeInput(f"The {what} cannot contain control characters such as line breaks.")
    if len(value) > max_length:
        raise UnsafeInput(f"The {what} is too long (at most {max_length} characters).")
    return value


def check_folder(name: str) -> str:
    if not name.strip():
        raise UnsafeInput("The folder name is empty.")
    return check_text(name, what="folder name", max_length=500)


def check_part(number: str) -> str:
    if not _PART_NUMBER.match(number):
        raise UnsafeInput("That is not a part of a message.")
    return number


# Configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: str  # "ssl" or "starttls"; anything else is refused (require_encryption)
    ca_file: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "Server":
        return cls(
            host=settings.WEBMAIL_IMAP_HOST,
            port=settings.WEBMAIL_IMAP_PORT,
            security=settings.WEBMAIL_IMAP_SECURITY,
            ca_file=settings.WEBMAIL_IMAP_CA_FILE,
            timeout=settings.WEBMAIL_IMAP_TIMEOUT,
        )

    @property
    def is_microsoft(self) -> bool:
        host = self.host.lower().rstrip(".")
        return any(host == name or host.endswith("." + name) for name in MICROSOFT_HOSTS)

    def ssl_context(self) -> ssl.SSLContext:
        return _ssl_context(self.ca_file)

    def require_encryption(self) -> None:
        """Refuse any security setting but "ssl" or "starttls", wherever a connection starts.

        The start-up check says the same, but a connection must never depend on it having run.
        """
        if self.security not in SECURITY_CHOICES:
            raise MailError(
                f"Webmail is set up with WEBMAIL_IMAP_SECURITY = {self.security!r}, which it "
                "does not know, so it will not connect: it never sends a password unencrypted. "
                "Please tell your administrator (the setting must be 'ssl' or 'starttls')."
            )


@cache
def _ssl_context(ca_file: str) -> ssl.SSLContext:
    """Verify certificates and host names against the system's CAs plus `ca_file`.

    Made once per CA file: loading the system's CA bundle takes longer than a TLS handshake.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# Data handed to the views ---------------------------------------------------------------------


@dataclass
class FolderState:
    name: str
    uidvalidity: int
    messages: int


@dataclass
class Folder:
    name: str
    delimiter: str
    special: str | None = None
    messages: int | None = 0  # None: not known just now (shown without a count)
    unseen: int | None = 0
    selectable: bool = True

    @property
    def label(self) -> str:
        if self.name.upper() == "INBOX":
            return "Inbox"
        return self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name

    @property
    def depth(self) -> int:
        return self.name.count(self.delimiter) if self.delimiter else 0

    @property
    def sort_key(self):
        if self.name.upper() == "INBOX":
            return (0, "")
        return (SPECIAL_ORDER.get(self.special, 9), self.name.casefold())


@dataclass(frozen=True)
class Summary:
    uid: int
    sender: str
    sender_address: str
    recipients: str
    subject: str
    date: datetime | None
    size: int
    seen: bool
    flagged: bool


@dataclass
class Page:
    folder: str
    uidvalidity: int
    number: int
    count: int  # messages in the folder, or matches of a search
    messages: list[Summary]

    @property
    def key(self) -> tuple:
        """Equal for two pages that would look the same: same messages, same flags."""
        return (
            self.folder,
            self.uidvalidity,
            self.number,
            self.count,
            tuple((m.uid, m.seen, m.flagged) for m in self.messages),
        )

    @property
    def pages(self) -> int:
        return pages_for(self.count)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.count else 0

    @property
    def last(self) -> int:
        return min(self.number * PAGE_SIZE, self.count)


# The deadline watchdog ------------------------------------------------------------------------


class _Watchdog:
    """One thread that shuts the sockets of guards whose deadlines pass.

    Deadlines start and end on every request; a thread of their own each time (a
    threading.Timer) cost a thread start, which waits until the new thread runs.
    """

    def __init__(self):
        self._wake = threading.Condition()
        # A heap, soonest first. Guards are held weakly: a cancelled deadline stays here until
        # it would have passed, and must not keep a dropped connection's socket open.
        self._deadlines: list[tuple[float, int, weakref.ref[_Guard]]] = []
        self._order = itertools.count()  # breaks ties, since guards do not compare
        self._thread: threading.Thread | None = None

    def watch(self, guard: "_Guard", ends: float) -> None:
        with self._wake:
            heapq.heappush(self._deadlines, (ends, next(self._order), weakref.ref(guard)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="imap-deadlines", daemon=True
                )
                self._thread.start()
            elif self._deadlines[0][2]() is guard:
                self._wake.notify()  # sooner than the deadline the thread waits for

    def _run(self) -> None:
        while True:
            # No local name keeps the last guard (and its socket) alive during the next wait.
            _expire_all(self._due())

    def _due(self) -> list[tuple["_Guard", float]]:
        """Wait until deadlines pass; return their guards (cancelled ones are skipped)."""
        with self._wake:
            while True:
                now = time.monotonic()
                passed = []
                while self._deadlines and self._deadlines[0][0] <= now:
                    ends, _, held = heapq.heappop(self._deadlines)
                    passed.append((held(), ends))
                due = [(guard, ends) for guard, ends in passed if guard and guard.ends == ends]
                if due:
                    return due
                del passed  # no guard kept alive while waiting
                self._wake.wait(self._deadlines[0][0] - now if self._deadlines else None)


def _expire_all(due: list[tuple["_Guard", float]]) -> None:
    for guard, ends in due:
        guard.expire(ends)


_watchdog = _Watchdog()


class _Guard:
    """Holds the live socket so the watchdog can shut it down; counts the commands sent."""

    def __init__(self):
        self.sock = None
        self.expired = False
        self.commands = 0
        self.ends: float | None = None  # when the running deadline passes (monotonic)

    def start(self, seconds: float) -> None:
        self.expired = False
        self.ends = time.monotonic() + seconds
        _watchdog.watch(self, self.ends)

    def extend(self, seconds: float) -> None:
        """Give the work under way `seconds` from now, unless the deadline already passed."""
        if not self.expired:
            self.start(seconds)

    def remaining(self) -> float:
        """Seconds left before the deadline (a little at least, so a call can fail cleanly)."""
        return max(0.1, (self.ends or 0.0) - time.monotonic())

    def attach(self, sock) -> None:
        """Watch `sock`; if the deadline already passed (during DNS or connect), shut it now."""
        self.sock = sock
        if self.expired:
            self._shut()

    def cancel(self) -> None:
        self.ends = None

    def expire(self, ends: float) -> None:
        """The deadline that was to pass at `ends` has passed, unless it was cancelled since."""
        if self.ends == ends:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self.sock is not None:
            with suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


class _GuardedMixin:
    guard: _Guard
    _greeted = False

    def _new_tag(self):
        self.guard.commands += 1
        return super()._new_tag()

    def _get_capabilities(self):
        # The greeting usually lists the capabilities: asking again costs a round trip. Only
        # the greeting's list is taken; after STARTTLS they are asked for over the new line.
        listed = self.untagged_responses.pop("CAPABILITY", None)
        if listed and not self._greeted:
            self._greeted = True
            self.capabilities = tuple(str(listed[-1], self._encoding).upper().split())
            return
        self._greeted = True
        super()._get_capabilities()


class _TLS(_GuardedMixin, tls.IMAP4_TLS):
    def __init__(self, host, port, ssl_context, timeout, guard):
        self.guard = guard
        super().__init__(host, port, ssl_context, timeout)

    def _create_socket(self, timeout=None):
        sock = socket.create_connection(
            (self.host, self.port), timeout=min(self._timeout, self.guard.remaining())
        )
        self.guard.attach(sock)
        wrapped = self.ssl_context.wrap_socket(
            sock, server_hostname=self.host, do_handshake_on_connect=False
        )
        self.guard.attach(wrapped)
        wrapped.do_handshake()
        return wrapped


class _Plain(_GuardedMixin, imap4.IMAP4WithTimeout):
    """The unencrypted start of a STARTTLS connection; nothing secret is sent on it."""

    def __init__(self, host, port, timeout, guard):
        self.guard = guard
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout=None):
        sock = super()._create_socket(min(self._timeout, self.guard.remaining()))
        self.guard.attach(sock)
        return sock


class _Client(IMAPClient):
    def __init__(self, server: Server, guard: _Guard):
        server.require_encryption()
        self._server = server
        self._guard = guard
        super().__init__(
            server.host,
            server.port,
            ssl=server.security == "ssl",
            ssl_context=server.ssl_context(),
            timeout=server.timeout,
        )
        self.normalise_times = False

    def _create_IMAP4(self):
        if self.ssl:
            return _TLS(self.host, self.port, self.ssl_context, self._timeout.connect, self._guard)
        self._server.require_encryption()  # only "starttls" may start in plain text
        return _Plain(self.host, self.port, self._timeout.connect, self._guard)


# The connection -------------------------------------------------------------------------------


class Mailbox:
    """A signed-in IMAP connection with the operations Webmail needs.

    Not thread-safe: one request uses it at a time (webmail.pool hands it out).
    """

    def __init__(self, server: Server):
        self.server = server
        self._guard = _Guard()
        self._client: IMAPClient | None = None
        self.broken = False
        self.selected: FolderState | None = None
        self._synced = False  # whether the open folder was brought up to date in this request
        self.trash: str | None = None
        self._looked_for_trash = False
        # Envelopes, sizes and dates by (folder, UIDVALIDITY, UID): they never change for a UID,
        # so a page shown again needs only its flags from the server.
        self._summaries: dict[tuple[str, int, int], Summary] = {}
        self._listed: set[tuple[str, int]] = set()  # (folder, UIDVALIDITY) seen in _summaries
        # Folder counts read with STATUS, by folder: (when, messages, unseen).
        self._counts: dict[str, tuple[float, int, int]] = {}
        # What views made from this connection's data, under keys they choose (Page.key).
        self.rendered: dict = {}
        # HTML read with a message page, for its body frame: (folder, UIDVALIDITY, UID) ->
        # (when, structure, html, truncated).
        self._bodies: dict[tuple[str, int, int], tuple[float, Message, str, bool]] = {}

    @property
    def commands(self) -> int:
        """IMAP commands sent on this connection so far."""
        return self._guard.commands

    def socket(self):
        """The connection's socket, for checking it is still open; None when closed."""
        return self._guard.sock if self._client is not None else None

    # Deadlines and errors

    @contextmanager
    def deadline(self, seconds: float | None = None) -> Iterator["Mailbox"]:
        """Run the block within the server timeout (or `seconds`), translating every failure."""
        self._guard.start(self.server.timeout if seconds is None else seconds)
        try:
            with self._translated():
                yield self
                if self._guard.expired:  # the socket was shut under a call that then "worked"
                    raise OSError("The deadline passed.")
        finally:
            self._guard.cancel()

    @contextmanager
    def _translated(self):
        """Turn failures of the connection into MailErrors; let everything else through.

        Only the socket, TLS and IMAP libraries speak for the server. Any other exception is a
        bug in Webmail (a template, a decoder) and must reach the error log as itself, not be
        blamed on the mail server. Either way the connection is not reused: a command may have
        been cut off half-way.
        """
        try:
            yield
        except (MailError, UnsafeInput):
            raise
        except Exception as exc:
            self.broken = True
            if self._guard.expired:
                raise TimedOut(
                    f"{self.server.host} did not answer within {self.server.timeout:g} seconds."
                ) from exc
            if isinstance(exc, (OSError, EOFError, imaplib.IMAP4.error)):
                raise _translate(exc, self.server) from exc
            raise

    def connect(self) -> "Mailbox":
        """Open the connection, encrypted, without signing in; raise a MailError saying why not.

        Nothing secret is sent: sign_in() then only signs in.
        """
        with self.deadline():
            self._connect()
        return self

    @sensitive_variables("password")
    def sign_in(self, username: str, password: str) -> "Mailbox":
        """Connect (unless connect() did) and sign in; raise a MailError saying why not."""
        check_text(username, what="user name", max_length=320)
        check_text(password, what="password", max_length=1024)
        with self.deadline():
            if self._client is None:
                self._connect()
            self._log_in(username, password)
            # Keep the capabilities the server sent with its answer to LOGIN; SELECT would
            # forget them and imapclient would ask again.
            self._client.capabilities()
        return self

    @sensitive_variables("access_token")
    def sign_in_oauth2(self, username: str, access_token: str) -> "Mailbox":
        """Connect and sign in with AUTHENTICATE XOAUTH2 (Microsoft 365); raise a MailError."""
        check_text(username, what="user name", max_length=320)
        check_text(access_token, what="access token", max_length=6000)
        with self.deadline():
            self._connect()
            try:
                with DropSecretFrames():
                    self._client.oauth2_login(username, access_token)
            except imap_errors.LoginError as exc:
                if isinstance(exc.__context__, imaplib.IMAP4.abort):
                    raise exc.__context__ from None  # the line dropped: no answer to the token
                # Dovecot answers [UNAVAILABLE] when it cannot ask the identity provider.
                raise _refusal(str(exc), self.server.host) or TokenRejected(
                    f"{self.server.host} did not accept the Microsoft sign-in for {username}."
                ) from exc
            finally:
                with suppress(AttributeError):
                    self._client._imap._cmd_log.clear()
            self._client.capabilities()
        return self

    def _connect(self) -> None:
        """Open the connection, encrypted before anything secret is sent."""
        self.server.require_encryption()
        self._client = _Client(self.server, self._guard)
        if self.server.security == "starttls":
            if not self._client.has_capability("STARTTLS"):
                raise ProtocolError(
                    f"{self.server.host} does not offer STARTTLS, so the connection cannot "
                    "be encrypted. Webmail never sends a password unencrypted."
                )
            self._client.starttls(self.server.ssl_context())
            self._guard.attach(self._client._imap.sock)
        if not isinstance(self._client._imap.sock, ssl.SSLSocket):
            raise ProtocolError("The connection is not encrypted, so no password is sent.")

    @sensitive_variables("password")
    def _log_in(self, username: str, password: str) -> None:
        """Send the password, and read the server's answer by its response code."""
        patience = self.server.timeout + REJECTION_DELAY_ALLOWANCE
        self._guard.extend(patience)
        self._client.socket().settimeout(patience)
        try:
            with DropSecretFrames():
                if (username + password).isascii():
                    self._client.login(username, password)
                elif self._client.has_capability("AUTH=PLAIN"):
                    # LOGIN can only carry ASCII (imaplib would refuse); SASL PLAIN is UTF-8.
                    self._client.plain_login(username, password)
                else:
                    raise ProtocolError(
                        f"{self.server.host} cannot take a user name or password with "
                        "characters beyond plain ASCII (it does not offer AUTHENTICATE PLAIN)."
                    )
        except imap_errors.LoginError as exc:
            if isinstance(exc.__context__, imaplib.IMAP4.abort):
                raise exc.__context__ from None  # the line dropped: no answer to the password
            raise _refusal(str(exc), self.server.host) or PasswordRejected(str(exc)) from exc
        finally:
            # imaplib keeps the last lines it sent, LOGIN and the password among them.
            with suppress(AttributeError):
                self._client._imap._cmd_log.clear()
            with suppress(OSError):
                self._client.socket().settimeout(self.server.timeout)

    def close(self) -> None:
        """Log out politely if possible; never raise."""
        client, self._client = self._client, None
        if client is None:
            return
        self._guard.start(2)
        try:
            if not self.broken:
                client.logout()
        except Exception:  # noqa: S110  (the connection is being dropped anyway)
            pass
        finally:
            self._guard.cancel()
            with suppress(Exception):
                client.shutdown()

    def reset(self) -> None:
        """Start a new request: the open folder is brought up to date before it is used."""
        self._synced = False

    def cache_bytes(self) -> int:
        """A cheap estimate of the mail data kept for reuse (about 1 KB per envelope)."""
        rendered = sum(len(value) for value in self.rendered.values() if isinstance(value, str))
        bodies = sum(1024 + len(html) for _, _, html, _ in self._bodies.values())
        return len(self._summaries) * 1024 + rendered + bodies

    # Folders

    def folders(self) -> list[Folder]:
        """All folders, Inbox first, then Drafts, Sent, Trash, then the rest, with counts."""
        if self._client.has_capability("LIST-STATUS"):
            folders = self._folders_with_status()
        else:
            folders = self._folders_then_status()
        _name_special_uses(folders)
        folders.sort(key=lambda folder: folder.sort_key)
        self.trash = next((f.name for f in folders if f.special == "\\Trash"), None)
        self._looked_for_trash = True
        return folders

    def _folders_with_status(self) -> list[Folder]:
        """LIST-STATUS (RFC 5819): every folder and its counts in one command."""
        imap = self._client._imap
        typ, data = imap._simple_command(
            "LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))"
        )
        if typ != "OK":
            raise ProtocolError(f"The folder list could not be read: {as_text(data[0])}")
        _, listed = imap._untagged_response(typ, data, "LIST")
        _, statuses = imap._untagged_response(typ, data, "STATUS")
        parsed = parse_response([line for line in statuses if line])
        counts = {
            _folder_name(name): pairs(values)
            for name, values in zip(parsed[::2], parsed[1::2], strict=True)
        }
        folders = []
        for flags, delimiter, name in _listed(listed):
            folder = _folder(flags, delimiter, name)
            status = counts.get(folder.name, {})
            folder.messages = int(status.get("messages", 0))
            folder.unseen = int(status.get("unseen", 0))
            folders.append(folder)
        return folders

    def _folders_then_status(self) -> list[Folder]:
        """LIST, then STATUS per folder (Exchange): counts kept briefly, fetched within a budget.

        A folder whose count is not known in time, or whose STATUS is refused, shows no count.
        """
        folders = [
            _folder(flags, as_text(delimiter), name)
            for flags, delimiter, name in self._client.list_folders()
        ]
        now = time.monotonic()
        budget_ends = now + self.server.timeout * STATUS_SHARE_OF_TIMEOUT
        for folder in folders:
            if not folder.selectable:
                continue
            when, messages, unseen = self._counts.get(folder.name, (0.0, None, None))
            if now - when >= STATUS_TTL_SECONDS:
                messages = unseen = None
                if time.monotonic() < budget_ends:
                    messages, unseen = self._status(folder.name)
            folder.messages, folder.unseen = messages, unseen
        return folders

    def _status(self, name: str) -> tuple[int | None, int | None]:
        try:
            status = self._client.folder_status(name, ["MESSAGES", "UNSEEN"])
        except imap_errors.IMAPClientAbortError:
            raise
        except imap_errors.IMAPClientError:
            return None, None  # refused for this folder alone: the others still show
        counts = (status.get(b"MESSAGES", 0), status.get(b"UNSEEN", 0))
        self._counts[name] = (time.monotonic(), *counts)
        return counts

    def _counts_changed(self, *names: str) -> None:
        """Forget kept counts of folders this connection changed, so they are read afresh."""
        for name in names:
            self._counts.pop(name, None)

    def select(self, name: str) -> FolderState:
        """Open folder `name`; if it is already open on this connection, bring it up to date.

        Keeping the folder open and asking for news with NOOP costs a fraction of SELECT, which
        makes the server open the folder again: tens of milliseconds for 100,000 messages.
        """
        check_folder(name)
        if self.selected is not None and self.selected.name == name and not self._synced:
            self._client.noop()
            self._absorb_news()
        if self.selected is not None and self.selected.name == name:
            return self.selected
        return self._select(name)

    def _select(self, name: str) -> FolderState:
        try:
            response = self._client.select_folder(name)
        except imap_errors.IMAPClientAbortError:
            raise
        except imap_errors.IMAPClientError as exc:
            self.selected = None
            refusal = _refusal(str(exc), self.server.host)
            if refusal is not None:
                raise refusal from exc
            raise NotFound(f"There is no folder called “{name}”.") from exc
        self._client._imap.untagged_responses.clear()
        self.selected = FolderState(
            name=name,
            uidvalidity=response.get(b"UIDVALIDITY", 0),
            messages=response.get(b"EXISTS", 0),
        )
        self._synced = True
        return self.selected

    def _absorb_news(self) -> None:
        """Follow what the server said about the open folder (with NOOP, say).

        New messages come as EXISTS with the new count. Expunged ones come as EXPUNGE with
        sequence numbers whose order against EXISTS is lost here, so then the folder is
        forgotten and opened afresh by the next select().
        """
        pending = self._client._imap.untagged_responses
        if self.selected is not None:
            if "EXPUNGE" in pending:
                self.selected = None
            elif "EXISTS" in pending:
                self.selected.messages = int(pending["EXISTS"][-1])
        for kind in ("EXISTS", "EXPUNGE", "RECENT", "FETCH"):
            pending.pop(kind, None)
        self._synced = self.selected is not None

    # Message lists

    def page(self, folder: str, number: int) -> Page:
        """One page of a folder, newest first: only that page's messages are fetched.

        Messages this connection has listed before need only their flags (one small FETCH);
        the rest come with envelopes, sizes and dates.
        """
        state = self.select(folder)
        number = max(1, min(number, pages_for(state.messages)))
        high = state.messages - (number - 1) * PAGE_SIZE
        low = max(1, high - PAGE_SIZE + 1)
        sequence = list(range(high, low - 1, -1)) if high >= 1 else []
        summaries = self._summaries_of(state, sequence, by_uid=False)
        return Page(folder, state.uidvalidity, number, state.messages, summaries)

    def search(self, folder: str, field_name: str, term: str, number: int) -> Page:
        """Messages in `folder` whose sender, subject or text contains `term`, newest first."""
        check_text(term, what="search term")
        key = SEARCH_FIELDS.get(field_name)
        if key is None:
            raise UnsafeInput("Choose to search by sender, subject or text.")
        state = self.select(folder)
        answer = self._client._raw_command_untagged(
            b"SEARCH", [b"CHARSET", b"UTF-8", key.encode(), _search_term(term)]
        )
        uids = sorted(parse_message_list(answer), reverse=True)
        number = max(1, min(number, pages_for(len(uids))))
        chosen = uids[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        summaries = self._summaries_of(state, chosen, by_uid=True)
        return Page(folder, state.uidvalidity, number, len(uids), summaries)

    def _summaries_of(self, state: FolderState, messages: list[int], *, by_uid: bool):
        """Summaries of `messages` (sequence numbers or UIDs) in that order, flags fresh."""
        if not messages:
            return []
        known = (state.name, state.uidvalidity) in self._listed
        response = self._flags(messages, by_uid=by_uid) if known else None
        if response is None:
            response = self._list_fetch(messages, by_uid=by_uid)
        if len(self._summaries) > SUMMARY_CACHE_SIZE:
            self._summaries.clear()
            self._listed.clear()
        self._listed.add((state.name, state.uidvalidity))
        found = []
        for number in messages:
            data = response.get(number)
            if data is None:
                continue  # expunged meanwhile
            uid = number if by_uid else data[b"UID"]
            key = (state.name, state.uidvalidity, uid)
            if b"ENVELOPE" in data:
                self._summaries[key] = _summary(uid, data)
            found.append((key, data.get(b"FLAGS", ())))
        missing = [key[2] for key, _ in found if key not in self._summaries]
        if missing:
            for uid, data in self._list_fetch(missing, by_uid=True).items():
                self._summaries[(state.name, state.uidvalidity, uid)] = _summary(uid, data)
        return [
            replace(self._summaries[key], seen=b"\\Seen" in flags, flagged=b"\\Flagged" in flags)
            for key, flags in found
            if key in self._summaries
        ]

    def _list_fetch(self, messages: list[int], *, by_uid: bool) -> dict[int, dict]:
        """LIST_ITEMS of `messages`, keyed by UID or sequence number as imapclient keys them.

        Read with a parser of our own for this one shape of answer (_parse_list_fetch): on a
        page of 50 envelopes imapclient's general parser took 5 ms, twice ours and twice the
        server's time to answer. Any other shape is asked for again through imapclient.
        """
        imap = self._client._imap
        message_set = ",".join(map(str, messages))
        items = f"({' '.join(LIST_ITEMS)})"
        if by_uid:
            typ, data = imap.uid("FETCH", message_set, items)
        else:
            typ, data = imap.fetch(message_set, items)
        if typ != "OK":
            text = as_text(data[-1])
            raise _refusal(text, self.server.host) or ProtocolError(
                f"The message list could not be read: {text}"
            )
        found = _parse_list_fetch(data, by_uid=by_uid)
        if found is not None:
            return found
        self._client.use_uid = by_uid
        try:
            return self._client.fetch(messages, LIST_ITEMS)
        finally:
            self._client.use_uid = True

    def _flags(self, messages: list[int], *, by_uid: bool) -> dict[int, dict] | None:
        """UID and FLAGS of `messages`, read with a small parser of its own.

        imapclient's general parser took longer than the rest of a page view; this answer has
        one simple shape. Returns None if any line has another, and the caller asks again.
        """
        imap = self._client._imap
        message_set = ",".join(map(str, messages))
        if by_uid:
            typ, data = imap.uid("FETCH", message_set, "(UID FLAGS)")
        else:
            typ, data = imap.fetch(message_set, "(UID FLAGS)")
        if typ != "OK":
            text = as_text(data[-1])
            raise _refusal(text, self.server.host) or ProtocolError(
                f"The message list could not be read: {text}"
            )
        found = {}
        for line in data:
            match = _FLAGS_ANSWER.match(line) if isinstance(line, bytes) else None
            if match is None:
                return None
            uid = int(match.group(2))
            found[uid if by_uid else int(match.group(1))] = {
                b"UID": uid,
                b"FLAGS": tuple(match.group(3).split()),
            }
        return found

    # One message

    def _fetch_one(self, uid: int, items: list[str]) -> dict:
        data = self._client.fetch([uid], items).get(uid)
        if data is None:
            raise NotFound("This message is no longer in this folder.")
        return data

    def message(
        self, folder: str, uid: int, *, text_limit: int, html_limit: int | None = None
    ) -> Message:
        """Read a message's headers and structure, and its text part when it has no HTML.

        With `html_limit`, also read its HTML part and keep it briefly for the body frame's
        request (see html_body). An unread message becomes read by reading its body
        (BODY[] rather than BODY.PEEK[]), so marking it needs no command of its own.
        """
        state = self._open_for_uid(folder)
        data = self._fetch_one(
            uid, ["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE"]
        )
        if not self._synced:
            self._absorb_news()
        envelope = data.get(b"ENVELOPE")
        flags = data.get(b"FLAGS", ())
        subject, substituted = read_header(getattr(envelope, "subject", None))
        message = Message(
            folder=folder,
            uid=uid,
            subject=subject,
            substituted_headers=substituted,
            sender=addresses(getattr(envelope, "from_", None)),
            to=addresses(getattr(envelope, "to", None)),
            cc=addresses(getattr(envelope, "cc", None)),
            reply_to=addresses(getattr(envelope, "reply_to", None)),
            date=aware(getattr(envelope, "date", None)) or aware(data.get(b"INTERNALDATE")),
            size=data.get(b"RFC822.SIZE", 0),
            seen=b"\\Seen" in flags,
            flagged=b"\\Flagged" in flags,
        )
        _arrange(message, data)
        peek = message.seen
        if message.html_part and html_limit is not None:
            html, truncated = self.part_text(message.html_part, uid, html_limit, peek=peek)
            self._keep_body(state, message, html, truncated)
            message.seen = True
        elif message.text_part and not message.html_part:
            message.text, message.text_truncated = self.part_text(
                message.text_part, uid, text_limit, peek=peek
            )
            message.seen = True
        if not peek and message.seen:
            self._counts_changed(folder)
        return message

    def _open_for_uid(self, folder: str) -> FolderState:
        """Open `folder` for commands by UID, without a NOOP when it is open already.

        The server tells of new and expunged messages with a UID FETCH's answer just as with
        NOOP (RFC 3501, 7.4.1), and a UID is found or not whatever the news; the caller takes
        the news in after its FETCH. NOOP costs a Maildir scan of the whole folder.
        """
        check_folder(folder)
        if self.selected is not None and self.selected.name == folder:
            return self.selected
        return self._select(folder)

    def _keep_body(self, state: FolderState, message: Message, html: str, truncated: bool):
        now = time.monotonic()
        for key, (when, *_) in list(self._bodies.items()):
            if now - when >= BODY_KEEP_SECONDS or len(self._bodies) >= BODIES_KEPT:
                del self._bodies[key]
        self._bodies[(state.name, state.uidvalidity, message.uid)] = (
            now,
            message,
            html,
            truncated,
        )

    def html_body(self, folder: str, uid: int, *, limit: int) -> tuple[Message, str, bool]:
        """A message's structure and HTML (at most `limit` bytes read), and whether it was cut.

        The HTML its message page read moments ago on this connection costs no command;
        otherwise (another worker's connection, or kept too long) it is read afresh. The
        HTML is "" when the message has none.
        """
        state = self.selected
        if state is not None and state.name == folder:
            kept = self._bodies.get((folder, state.uidvalidity, uid))
            if kept is not None and time.monotonic() - kept[0] < BODY_KEEP_SECONDS:
                return kept[1], kept[2], kept[3]
        message = self.structure(folder, uid)
        if message.html_part is None:
            return message, "", False
        html, truncated = self.part_text(message.html_part, uid, limit)
        return message, html, truncated

    def part_text(self, part: Part, uid: int, limit: int, *, peek: bool = True) -> tuple[str, bool]:
        """Decode a text part, reading at most `limit` bytes of it (and marking it read
        unless `peek`)."""
        raw = self.part_bytes(part.number, uid, 0, limit, peek=peek)
        text = decode_part(raw, part)
        return text.replace("\r\n", "\n"), part.size > limit

    def part_bytes(
        self, number: str, uid: int, offset: int, length: int, *, peek: bool = True
    ) -> bytes:
        """Raw (still transfer-encoded) bytes of a part, from `offset`, at most `length`."""
        if number:
            check_part(number)
        item = "BODY.PEEK" if peek else "BODY"
        data = self._fetch_one(uid, [f"{item}[{number}]<{offset}.{length}>"])
        key = f"BODY[{number}]<{offset}>".encode()
        value = data.get(key)
        if value is None:
            # Some servers leave out the origin when the whole part fits.
            value = data.get(f"BODY[{number}]".encode(), b"")
        return value or b""

    def structure(self, folder: str, uid: int) -> Message:
        """Read a message's parts without any body (for the HTML view and downloads)."""
        self.select(folder)
        message = Message(folder=folder, uid=uid)
        _arrange(message, self._fetch_one(uid, ["UID", "BODYSTRUCTURE"]))
        return message

    def stream(self, folder: str, uid: int, number: str, chunk: int) -> Iterator[bytes]:
        """Yield a part (or the whole raw message for number "") in chunks, as stored.

        Each chunk gets its own deadline, so a large download is not cut off by the timeout,
        and the whole download must end within WEBMAIL_DOWNLOAD_TIMEOUT, so a server (or a
        reader) that trickles one chunk per timeout cannot hold the connection for hours.
        """
        limit = settings.WEBMAIL_DOWNLOAD_TIMEOUT
        ends = time.monotonic() + limit
        too_long = f"The download took longer than {limit:g} seconds and was stopped."
        offset = 0
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                self.broken = True  # a FETCH may be half read; the connection is not reused
                raise TimedOut(too_long)
            try:
                with self.deadline(min(self.server.timeout, left)):
                    self.select(folder)
                    data = self.part_bytes(number, uid, offset, chunk)
            except TimedOut as exc:
                if time.monotonic() < ends:
                    raise
                raise TimedOut(too_long) from exc
            if not data:
                return
            yield data
            offset += len(data)
            if len(data) < chunk:
                return

    def neighbour(self, folder: str, uid: int, *, older: bool) -> int | None:
        """The UID listed just after (older) or before (newer) `uid` in `folder`, or None.

        Lists run in arrival order, newest first, so these are the sequence numbers either side.
        """
        self.select(folder)
        sequence = self._fetch_one(uid, ["UID"]).get(b"SEQ")
        wanted = sequence - 1 if older else sequence + 1
        if not sequence or wanted < 1 or wanted > self.selected.messages:
            return None
        self._client.use_uid = False
        try:
            found = self._client.fetch([wanted], ["UID"]).get(wanted, {})
        finally:
            self._client.use_uid = True
        return found.get(b"UID")

    # Changes

    def mark(self, folder: str, uids: list[int], flag: str, on: bool) -> None:
        self.select(folder)
        self._counts_changed(folder)
        imap_flag = {"seen": b"\\Seen", "flagged": b"\\Flagged"}[flag]
        if on:
            self._client.add_flags(uids, [imap_flag], silent=True)
        else:
            self._client.remove_flags(uids, [imap_flag], silent=True)

    def move(self, folder: str, uids: list[int], target: str) -> None:
        check_folder(target)
        self.select(folder)
        if target == folder:
            return
        self._counts_changed(folder, target)
        if self._client.has_capability("MOVE"):
            self._client.move(uids, target)
        else:
            self._require_uidplus()  # before copying, so nothing is left in two places
            self._client.copy(uids, target)
            self._expunge(uids)

    def deletes_for_good(self, folder: str) -> bool:
        """Whether deleting in `folder` is for good: in Trash, or when there is no Trash."""
        if not self._looked_for_trash:
            self.folders()
        return not self.trash or folder == self.trash

    def delete(self, folder: str, uids: list[int]) -> bool:
        """Move to Trash, or delete for good in Trash or when there is none; True if for good."""
        if not self.deletes_for_good(folder):
            self.move(folder, uids, self.trash)
            return False
        self.select(folder)
        self._expunge(uids)
        return True

    def _expunge(self, uids: list[int]) -> None:
        self._require_uidplus()
        if self.selected is not None:
            self._counts_changed(self.selected.name)
        self._client.add_flags(uids, [b"\\Deleted"], silent=True)
        self._client.uid_expunge(uids)

    def _require_uidplus(self) -> None:
        if not self._client.has_capability("UIDPLUS"):
            # A plain EXPUNGE would also remove every other message marked deleted elsewhere.
            raise ProtocolError(
                f"{self.server.host} cannot remove single messages safely (it lacks UIDPLUS), "
                "so Webmail leaves them where they are."
            )

    # Writing mail (webmail.sending): drafts, copies in Sent, answered and forwarded flags

    def special_folder(self, special: str) -> str | None:
        """The folder for `special` (\\Sent, \\Drafts): by the server's flag, else by name."""
        folders = [_folder(*listed) for listed in self._client.list_folders()]
        return next((f.name for f in folders if f.special == special and f.selectable), None)

    def append(self, folder: str, raw: bytes, flags: list[str]) -> int | None:
        """Store a message in `folder`; return its UID when the server says (UIDPLUS)."""
        check_folder(folder)
        answer = self._client.append(folder, raw, flags=[flag.encode() for flag in flags])
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", answer or b"")
        return int(match.group(1)) if match else None

    def raw_message(self, folder: str, uid: int, *, limit: int) -> bytes:
        """A whole message as stored; NotFound if it is gone, MailError if over `limit` bytes."""
        self.select(folder)
        size = self._fetch_one(uid, ["RFC822.SIZE"]).get(b"RFC822.SIZE", 0)
        if size > limit:
            raise MailError(f"This message is larger than {limit // 1024 // 1024} MB.")
        return self._fetch_one(uid, ["BODY.PEEK[]"]).get(b"BODY[]") or b""

    def header_bytes(self, folder: str, uid: int) -> bytes:
        """A message's header section as stored."""
        self.select(folder)
        return self._fetch_one(uid, ["BODY.PEEK[HEADER]"]).get(b"BODY[HEADER]") or b""

    def add_flags(self, folder: str, uids: list[int], flags: list[str]) -> None:
        """Set flags such as \\Answered or $Forwarded."""
        self.select(folder)
        self._client.add_flags(uids, [flag.encode() for flag in flags], silent=True)

    def remove(self, folder: str, uids: list[int]) -> None:
        """Delete messages for good (a sent draft, say), leaving others alone."""
        self.select(folder)
        self._expunge(uids)


def _arrange(message: Message, data: dict) -> None:
    """Sort a FETCHed BODYSTRUCTURE into the message's bodies and attachments, or mark it
    damaged (its raw source can still be shown)."""
    read_structure(message, data.get(b"BODYSTRUCTURE"))


def _search_term(term: str) -> bytes:
    """A search term as IMAP must see it: a quoted string, or a literal if not ASCII.

    imapclient leaves a term without spaces or quotes unquoted, so a term like {5} would be
    read by the server as the start of a literal and the connection would hang.
    """
    raw = term.encode()
    if not raw.isascii():
        return raw  # sent as a literal ({n} and the bytes)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# The tokens of a FETCH answer of the message list's shape (_parse_list_fetch).
_LIST_TOKEN = re.compile(
    rb"[ ]*(?:(\()|(\))"  # ( or )
    rb'|"((?:[^"\\\r\n]|\\["\\])*)"'  # a quoted string, with \" and \\ escaped
    rb"|\{(\d+)\}$"  # a literal's size, at the end of the line imaplib cut before it
    rb'|([^ ()"{}\[\]\r\n]+)'  # an atom: NIL, a number, a flag, an item's name
    rb"|(.))",  # anything else: not an answer of this shape
    re.DOTALL,
)
_ESCAPED = re.compile(rb"\\([\"\\])")


def _parse_list_fetch(data: list, *, by_uid: bool) -> dict[int, dict] | None:
    """What imapclient's fetch() returns for LIST_ITEMS, or None for any other shape.

    `data` is a FETCH answer as imaplib hands it over: lines, and (line, literal) pairs where
    a line ends with {size}. Parentheses become tuples, NIL None, numbers int, strings bytes.
    """
    stack: list[list] = [[]]
    for part in data:
        line, literal = part if isinstance(part, tuple) else (part, None)
        if not isinstance(line, bytes):
            return None
        for opening, closing, quoted, size, atom, other in _LIST_TOKEN.findall(line):
            if other:
                return None
            if opening:
                stack.append([])
            elif closing:
                if len(stack) == 1:
                    return None
                done = tuple(stack.pop())
                stack[-1].append(done)
            elif atom:
                if atom.isdigit():
                    stack[-1].append(int(atom))
                else:
                    stack[-1].append(None if atom.upper() == b"NIL" else atom)
            elif size:
                if literal is None or len(literal) != int(size):
                    return None
                stack[-1].append(literal)
                literal = None
            else:
                stack[-1].append(_ESCAPED.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        if literal is not None:
            return None
    answers = stack[0]
    if len(stack) != 1 or len(answers) % 2:
        return None
    found: dict[int, dict] = {}
    for number, items in zip(answers[::2], answers[1::2], strict=True):
        if not isinstance(number, int) or not isinstance(items, tuple) or len(items) % 2:
            return None
        message = {b"SEQ": number}
        for name, value in zip(items[::2], items[1::2], strict=True):
            name = name.upper() if isinstance(name, bytes) else b""
            number_item = name in (b"UID", b"RFC822.SIZE") and isinstance(value, int)
            if number_item or (name == b"FLAGS" and isinstance(value, tuple)):
                message[name] = value
            elif name == b"ENVELOPE" and isinstance(value, tuple) and len(value) == 10:
                envelope = _envelope(value)
                if envelope is None:
                    return None
                message[name] = envelope
            else:
                return None
        # Keyed as imapclient keys: by UID (then not kept among the items), else by number.
        key = message.pop(b"UID", number) if by_uid else number
        found.setdefault(key, {}).update(message)
    return found


def _envelope(value: tuple) -> Envelope | None:
    """imapclient's Envelope of a parsed ENVELOPE, or None if it is not one."""
    date = None
    if isinstance(value[0], bytes) and value[0]:
        with suppress(ValueError):
            date = parse_to_datetime(value[0], normalise=False)
    lists = []
    for listed in value[2:8]:
        if not listed:  # NIL, or an empty list
            lists.append(None)
            continue
        if not isinstance(listed, tuple):
            return None
        if not all(isinstance(entry, tuple) and len(entry) == 4 for entry in listed):
            return None
        lists.append(tuple(Address(*entry) for entry in listed))
    return Envelope(date, value[1], *lists, value[8], value[9])


def _summary(uid: int, data: dict) -> Summary:
    flags = data.get(b"FLAGS", ())
    envelope = data.get(b"ENVELOPE")
    sender_name, sender_address = ("", "")
    if envelope is not None and envelope.from_:
        sender_name, sender_address = address(envelope.from_[0])
    return Summary(
        uid=uid,
        sender=sender_name or sender_address,
        sender_address=sender_address,
        recipients=addresses(envelope.to) if envelope is not None else "",
        subject=decode_words(envelope.subject) if envelope is not None else "",
        date=aware(getattr(envelope, "date", None)),
        size=data.get(b"RFC822.SIZE", 0),
        seen=b"\\Seen" in flags,
        flagged=b"\\Flagged" in flags,
    )


def _folder_name(raw) -> str:
    if isinstance(raw, bytes):
        return imap_utf7.decode(raw)
    return str(raw)


def _listed(listed) -> list:
    lines = [item for item in listed if item not in (None, b"")]
    parsed = parse_response(lines)
    return [parsed[i : i + 3] for i in range(0, len(parsed), 3)]


def _folder(flags, delimiter, name) -> Folder:
    """A folder as listed, its special use taken only from the server's flags."""
    flags = {as_text(flag) for flag in flags}
    name = _folder_name(name)
    delimiter = as_text(delimiter)
    special = next((flag for flag in flags if flag in SPECIAL_USE), None)
    selectable = not ({"\\Noselect", "\\NonExistent"} & flags)
    return Folder(name=name, delimiter=delimiter, special=special, selectable=selectable)


def _name_special_uses(folders: list[Folder]) -> None:
    """Guess special uses from names, only for uses no folder carries as a server flag.

    A folder merely named like Trash (Archive/Trash, say) must not take mail meant for the
    folder the server flags \\Trash. Of several guesses for one use, the shallowest wins.
    """
    flagged = {folder.special for folder in folders if folder.special}
    guessed: dict[str, Folder] = {}
    for folder in sorted(folders, key=lambda f: (f.depth, f.name.casefold())):
        if folder.special or not folder.selectable:
            continue
        special = SPECIAL_NAMES.get(folder.label.casefold())
        if special and special not in flagged and special not in guessed:
            guessed[special] = folder
            folder.special = special


def _translate(exc: Exception, server: Server) -> MailError:
    host = server.host
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateProblem(
            f"The certificate of {host} could not be verified ({exc.verify_message}). "
            "Webmail will not send your password to a server it cannot verify; please tell "
            "your IT administrator."
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TimedOut(f"{host} did not answer within {server.timeout:g} seconds.")
    if isinstance(exc, ssl.SSLError):
        return ProtocolError(f"A secure connection to {host} could not be set up ({exc.reason}).")
    if isinstance(exc, socket.gaierror):
        return ServerUnreachable(f"The mail server name {host} could not be found.")
    if isinstance(exc, ConnectionRefusedError):
        return ServerUnreachable(f"{host} refused the connection on port {server.port}.")
    if isinstance(exc, OSError):
        return ServerUnreachable(f"The connection to {host} failed or was dropped.")
    if isinstance(exc, imaplib.IMAP4.error):
        refusal = _refusal(str(exc), host)  # a NO or BYE with a code, for any command
        if refusal is not None:
            return refusal
    if isinstance(exc, imaplib.IMAP4.abort):
        return ProtocolError(f"{host} closed the connection unexpectedly.")
    return ProtocolError(f"{host} answered in a way Webmail did not understand.")
