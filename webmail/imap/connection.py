"""Opening connections: the server's settings, TLS, and the deadline watchdog that shuts a
socket when its time is up."""

import heapq
import itertools
import socket
import ssl
import threading
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from imapclient import IMAPClient, imap4, tls

from webmail.imap.errors import MailError

MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office.com", "microsoft.com")
SECURITY_CHOICES = ("ssl", "starttls")
# Servers hold back the answer to a password to slow guessing. Dovecot as shipped says "no"
# after 2 s, and after rejections from one address (Webmail is one address for all its users)
# waits up to 15 s more before checking the next password, a right one too. The answer to a
# password (to IMAP, and to SMTP, where Postfix asks Dovecot) gets this long on top of the
# timeout, so a slow answer is read, not taken for a server that hangs.
REJECTION_DELAY_ALLOWANCE = 20.0


# Configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: str  # "ssl" or "starttls"; anything else is refused (require_encryption)
    ca_file: str
    timeout: float
    sends_client_address: bool = False  # WEBMAIL_IMAP_SEND_CLIENT_ADDRESS

    @classmethod
    def from_settings(cls) -> "Server":
        return cls(
            host=settings.WEBMAIL_IMAP_HOST,
            port=settings.WEBMAIL_IMAP_PORT,
            security=settings.WEBMAIL_IMAP_SECURITY,
            ca_file=settings.WEBMAIL_IMAP_CA_FILE,
            timeout=settings.WEBMAIL_IMAP_TIMEOUT,
            sends_client_address=settings.WEBMAIL_IMAP_SEND_CLIENT_ADDRESS,
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
