"""Signed-in IMAP connections kept for reuse within one browser session, in this process only.

A connection is handed to one request at a time and is keyed by the Django session, the user and
a keyed digest of the credentials and server, so it is never shared between users or sessions
and a changed password or server never reuses an old connection. Idle connections are closed
after WEBMAIL_IMAP_IDLE_SECONDS. Losing the pool (a restart, another worker) only costs a new
sign-in: nothing else depends on it.
"""

import hashlib
import hmac
import select
import threading
import time
from collections.abc import Hashable

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from webmail.imap import Mailbox, Server


@sensitive_variables("password")
def pool_key(*, session_key: str, user_id: int, server: Server, username: str, password: str):
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        "\x00".join([repr(server), username, password]).encode(),
        hashlib.sha256,
    ).hexdigest()
    return (session_key, user_id, digest)


def _looks_alive(mailbox: Mailbox) -> bool:
    """An idle connection with anything to read has been closed by the server (or said BYE)."""
    sock = mailbox.socket()
    if sock is None:
        return False
    try:
        if getattr(sock, "pending", lambda: 0)():
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._idle: dict[Hashable, list[tuple[Mailbox, float]]] = {}
        self._reaper: threading.Thread | None = None

    def take(self, key) -> Mailbox | None:
        """Return an idle signed-in connection for `key`, or None."""
        stale = []
        found = None
        with self._lock:
            entries = self._idle.get(key, [])
            while entries:
                mailbox, since = entries.pop()
                if time.monotonic() - since < settings.WEBMAIL_IMAP_IDLE_SECONDS and _looks_alive(
                    mailbox
                ):
                    found = mailbox
                    break
                stale.append(mailbox)
            if not entries:
                self._idle.pop(key, None)
        for mailbox in stale:
            mailbox.close()
        return found

    def give_back(self, key, mailbox: Mailbox) -> None:
        """Keep a healthy connection for reuse; close a broken one or one too many."""
        if mailbox.broken or settings.WEBMAIL_IMAP_IDLE_SECONDS <= 0:
            mailbox.close()
            return
        extra = []
        with self._lock:
            entries = self._idle.setdefault(key, [])
            entries.append((mailbox, time.monotonic()))
            while len(entries) > settings.WEBMAIL_IMAP_POOL_PER_SESSION:
                extra.append(entries.pop(0)[0])
            extra.extend(self._over_capacity())
            self._start_reaper()
        for old in extra:
            old.close()

    def _over_capacity(self) -> list[Mailbox]:
        """Remove the least recently used connections beyond WEBMAIL_IMAP_POOL_SIZE."""
        everything = sorted(
            (
                (since, key, mailbox)
                for key, entries in self._idle.items()
                for mailbox, since in entries
            ),
            key=lambda item: item[0],
        )
        removed = []
        while len(everything) - len(removed) > settings.WEBMAIL_IMAP_POOL_SIZE:
            _, key, mailbox = everything[len(removed)]
            self._idle[key] = [entry for entry in self._idle[key] if entry[0] is not mailbox]
            removed.append(mailbox)
        return removed

    def drop_session(self, session_key: str) -> None:
        """Close every connection of a browser session (at sign-out)."""
        with self._lock:
            keys = [key for key in self._idle if key[0] == session_key]
            dropped = [mailbox for key in keys for mailbox, _ in self._idle.pop(key)]
        for mailbox in dropped:
            mailbox.close()

    def close_idle(self) -> None:
        now = time.monotonic()
        expired = []
        with self._lock:
            for key in list(self._idle):
                keep = []
                for mailbox, since in self._idle[key]:
                    if now - since >= settings.WEBMAIL_IMAP_IDLE_SECONDS:
                        expired.append(mailbox)
                    else:
                        keep.append((mailbox, since))
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for mailbox in expired:
            mailbox.close()

    def close_all(self) -> None:
        with self._lock:
            everything = [mailbox for entries in self._idle.values() for mailbox, _ in entries]
            self._idle.clear()
        for mailbox in everything:
            mailbox.close()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._idle.values())

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, name="imap-pool-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        while True:
            time.sleep(max(0.2, min(1.0, settings.WEBMAIL_IMAP_IDLE_SECONDS / 4)))
            self.close_idle()


pool = Pool()
