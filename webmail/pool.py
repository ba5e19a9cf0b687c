"""Signed-in IMAP connections: reused between requests, and within each mailbox's budget.

Reuse. An idle connection is kept under the app user and a keyed digest of the credentials
and server, so every browser session of that user with the same password shares it, no other
user ever gets it, and a changed password or server never reuses an old one. Idle connections
are closed after WEBMAIL_IMAP_IDLE_SECONDS, and the idle ones of a process are bounded in count
(WEBMAIL_IMAP_POOL_SIZE) and in the bytes of cached mail data they keep (WEBMAIL_IMAP_POOL_BYTES).

Budget. No mailbox has more than WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX connections open from
the app, across all processes: each open connection holds a ConnectionSlot row, numbered below
the budget and unique per mailbox, so the database decides who gets the last one. A request
that finds none free closes this process's idle connections to that mailbox, marks the others'
slots as wanted (their holders close them once idle, within a second) and waits briefly,
reusing a connection as soon as one comes back. Holders renew their leases from a background
thread; a killed process's slots expire after LEASE_SECONDS. Reusing a connection costs no
database query; only opening or closing one does.
"""

import hashlib
import hmac
import logging
import os
import select
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from webmail.imap import Mailbox, Server, TooManyConnections
from webmail.models import ConnectionSlot, mailbox_name, unsynced

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60  # how long a slot outlives its holder's last renewal
RENEW_EVERY = LEASE_SECONDS / 4


@sensitive_variables("password")
def pool_key(*, user_id: int, server: Server, username: str, password: str):
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        "\x00".join([repr(server), username, password]).encode(),
        hashlib.sha256,
    ).hexdigest()
    return (user_id, digest)


def budget_name(server: Server, username: str) -> str:
    """What the connection budget is kept under: the server and the normalised user name."""
    return f"{server.host.lower()}:{server.port}/{mailbox_name(username)}"


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


@dataclass
class Slot:
    id: int
    budget: str
    expires_at: datetime


@dataclass
class _Idle:
    mailbox: Mailbox
    since: float
    size: int


class Pool:
    def __init__(self):
        # Re-entrant: a collected connection's finalizer may run in a thread holding it.
        self._lock = threading.RLock()
        self._claiming = threading.Lock()
        self._idle: dict[Hashable, list[_Idle]] = {}
        # Every connection this process has open, held weakly: one a bug never gave back
        # must not be kept open (and its slot renewed) for ever.
        self._slots: weakref.WeakKeyDictionary[Mailbox, Slot] = weakref.WeakKeyDictionary()
        self._claimed: dict[int, Slot] = {}  # slot ids this process holds (also mid-sign-in)
        self._reaper: threading.Thread | None = None
        self._pid = None
        self._holder = ""
        self._renewed = 0.0

    @property
    def holder(self) -> str:
        """This process, as named in the slots table (a forked child gets a name of its own)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._holder = f"{socket.gethostname()[:50]}:{self._pid}:{uuid.uuid4().hex[:12]}"
        return self._holder

    # Lending

    def lend(self, key, budget: str, connect: Callable[[], Mailbox]) -> Mailbox:
        """An idle connection for `key`, else a new one from `connect()` within the budget.

        Waits up to WEBMAIL_IMAP_TIMEOUT for a connection to come back or a slot to free up,
        then raises TooManyConnections.
        """
        deadline = time.monotonic() + settings.WEBMAIL_IMAP_TIMEOUT
        while True:
            mailbox = self.take(key)
            if mailbox is not None:
                return mailbox
            slot = self._claim(budget)
            if slot is not None:
                break
            if time.monotonic() >= deadline:
                raise TooManyConnections(
                    "Webmail is already using all "
                    f"{settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX} connections it allows "
                    "itself to your mailbox. Please try again in a moment."
                )
            time.sleep(0.1)
        try:
            mailbox = connect()
        except BaseException:
            self._release([slot])
            raise
        with self._lock:
            self._slots[mailbox] = slot
        weakref.finalize(mailbox, self._forget, slot)
        return mailbox

    def _forget(self, slot: Slot) -> None:
        """Stop renewing the slot of a connection collected without being closed here."""
        with self._lock:
            if self._claimed.get(slot.id) is slot:
                del self._claimed[slot.id]

    def take(self, key) -> Mailbox | None:
        """Return an idle signed-in connection for `key`, or None."""
        stale = []
        found = None
        with self._lock:
            entries = self._idle.get(key, [])
            while entries:
                entry = entries.pop()
                if time.monotonic() - entry.since < settings.WEBMAIL_IMAP_IDLE_SECONDS and (
                    _looks_alive(entry.mailbox)
                ):
                    found = entry.mailbox
                    break
                stale.append(entry.mailbox)
            if not entries:
                self._idle.pop(key, None)
        self._close(stale)
        if found is not None and not self._lease_holds(found):
            self._close([found])
            found = None
        return found

    def give_back(self, key, mailbox: Mailbox) -> None:
        """Keep a healthy connection for reuse; close a broken one or one too many."""
        if mailbox.broken or settings.WEBMAIL_IMAP_IDLE_SECONDS <= 0:
            self._close([mailbox])
            return
        size = mailbox.cache_bytes()
        with self._lock:
            self._idle.setdefault(key, []).append(_Idle(mailbox, time.monotonic(), size))
            extra = self._over_capacity()
        self._start_reaper()
        self._close(extra)

    def discard(self, mailbox: Mailbox) -> None:
        """Close a connection that will not be given back (its sign-in failed, say)."""
        self._close([mailbox])

    def _over_capacity(self) -> list[Mailbox]:
        """Remove the least recently used idle connections beyond the count and byte limits."""
        everything = sorted(
            ((entry, key) for key, entries in self._idle.items() for entry in entries),
            key=lambda item: item[0].since,
        )
        total = sum(entry.size for entry, _ in everything)
        removed = []
        for entry, key in everything:
            if (
                len(everything) - len(removed) <= settings.WEBMAIL_IMAP_POOL_SIZE
                and total <= settings.WEBMAIL_IMAP_POOL_BYTES
            ):
                break
            self._idle[key].remove(entry)
            if not self._idle[key]:
                del self._idle[key]
            total -= entry.size
            removed.append(entry.mailbox)
        return removed

    # Closing

    def drop_user(self, user_id: int) -> None:
        """Close the idle connections of an app user (when they leave Webmail or sign out)."""
        with self._lock:
            keys = [key for key in self._idle if key[0] == user_id]
            dropped = [entry.mailbox for key in keys for entry in self._idle.pop(key)]
        self._close(dropped)

    def close_idle(self) -> None:
        now = time.monotonic()
        expired = []
        with self._lock:
            for key in list(self._idle):
                keep = []
                for entry in self._idle[key]:
                    if now - entry.since >= settings.WEBMAIL_IMAP_IDLE_SECONDS:
                        expired.append(entry.mailbox)
                    else:
                        keep.append(entry)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        self._close(expired)

    def close_all(self) -> None:
        with self._lock:
            everything = [entry.mailbox for entries in self._idle.values() for entry in entries]
            self._idle.clear()
        self._close(everything)

    def _close_idle_of(self, budget: str) -> bool:
        """Close this process's least recently used idle connection to a mailbox, if any."""
        with self._lock:
            found = [
                (entry, key)
                for key, entries in self._idle.items()
                for entry in entries
                if self._budget_of(entry.mailbox) == budget
            ]
            if not found:
                return False
            entry, key = min(found, key=lambda item: item[0].since)
            self._idle[key].remove(entry)
            if not self._idle[key]:
                del self._idle[key]
        self._close([entry.mailbox])
        return True

    def _budget_of(self, mailbox: Mailbox) -> str | None:
        slot = self._slots.get(mailbox)
        return slot.budget if slot else None

    def _close(self, mailboxes: list[Mailbox]) -> None:
        """Log out of `mailboxes`, then give up their slots."""
        slots = []
        for mailbox in mailboxes:
            mailbox.close()
            with self._lock:
                slot = self._slots.pop(mailbox, None)
            if slot is not None:
                slots.append(slot)
        self._release(slots)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._idle.values())

    # Slots

    def _claim(self, budget: str) -> Slot | None:
        """Take a free or expired slot of `budget`; else ask its holders for one and return None."""
        # One claim at a time in a process, so a slot another thread has just inserted is never
        # mistaken for one this process let go of.
        with self._claiming:
            slot = self._claim_now(budget)
            # All in use: this process's idle connections to the mailbox go first.
            while slot is None and self._close_idle_of(budget):
                slot = self._claim_now(budget)
            if slot is None:
                with unsynced():
                    ConnectionSlot.objects.filter(mailbox=budget, wanted=False).exclude(
                        holder=self.holder
                    ).update(wanted=True)
                self._start_reaper()
            return slot

    def _claim_now(self, budget: str) -> Slot | None:
        now = timezone.now()
        expires_at = now + timedelta(seconds=LEASE_SECONDS)
        holder = self.holder
        rows = list(
            ConnectionSlot.objects.filter(mailbox=budget).values_list(
                "id", "number", "holder", "expires_at"
            )
        )
        with self._lock:
            mine = set(self._claimed)
        taken = {number for _, number, _, _ in rows}
        for number in range(settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX):
            if number in taken:
                continue
            slot_id = ConnectionSlot.take(budget, number, holder, expires_at)
            if slot_id is None:
                continue  # another process took it a moment ago
            return self._claimed_slot(slot_id, budget, expires_at)
        for slot_id, number, owner, until in rows:
            # Expired, or this process's own whose connection it already closed.
            lapsed = until <= now or (owner == holder and slot_id not in mine)
            if not lapsed or number >= settings.WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX:
                continue
            with unsynced():
                taken = ConnectionSlot.objects.filter(
                    id=slot_id, holder=owner, expires_at=until
                ).update(holder=holder, expires_at=expires_at, wanted=False)
            if taken:
                return self._claimed_slot(slot_id, budget, expires_at)
        return None

    def _claimed_slot(self, slot_id: int, budget: str, expires_at: datetime) -> Slot:
        slot = Slot(slot_id, budget, expires_at)
        with self._lock:
            self._claimed[slot_id] = slot
        self._start_reaper()
        return slot

    def _lease_holds(self, mailbox: Mailbox) -> bool:
        """Whether an idle connection's slot lasts through a request, renewing it if need be.

        The reaper renews leases every RENEW_EVERY seconds; this only queries the database
        when it has fallen behind (the database was away, say).
        """
        slot = self._slots.get(mailbox)
        if slot is None:
            return False
        margin = timedelta(seconds=2 * settings.WEBMAIL_IMAP_TIMEOUT + RENEW_EVERY)
        now = timezone.now()
        if slot.expires_at - now > margin:
            return True
        expires_at = now + timedelta(seconds=LEASE_SECONDS)
        if ConnectionSlot.objects.filter(id=slot.id, holder=self.holder).update(
            expires_at=expires_at
        ):
            slot.expires_at = expires_at
            return True
        return False

    def _release(self, slots: list[Slot]) -> None:
        if not slots:
            return
        try:
            with unsynced():
                ConnectionSlot.objects.filter(
                    id__in=[slot.id for slot in slots], holder=self.holder
                ).delete()
        except Exception:
            # The lease runs out by itself; until then this process may reuse the slot.
            logger.warning("Could not give back IMAP connection slots", exc_info=True)
        # Only now: a slot of this process's that is not in _claimed may be taken again.
        with self._lock:
            for slot in slots:
                self._claimed.pop(slot.id, None)

    # The reaper

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is None or not self._reaper.is_alive():
                self._reaper = threading.Thread(
                    target=self._reap, name="imap-pool-reaper", daemon=True
                )
                self._reaper.start()

    def _reap(self) -> None:
        while True:
            time.sleep(max(0.2, min(1.0, settings.WEBMAIL_IMAP_IDLE_SECONDS / 4)))
            try:
                self.close_idle()
                with self._lock:
                    holding = bool(self._claimed)
                if holding:
                    self._serve_waiters()
                    self._renew()
            except Exception:
                logger.warning("The IMAP connection reaper failed; trying again", exc_info=True)
            finally:
                # A thread of its own keeps no database connection between rounds.
                connection.close()

    def _serve_waiters(self) -> None:
        """Close idle connections whose slots another process is waiting for."""
        wanted = set(
            ConnectionSlot.objects.filter(holder=self.holder, wanted=True).values_list(
                "id", flat=True
            )
        )
        if not wanted:
            return
        with self._lock:
            closing = []
            for key in list(self._idle):
                keep = []
                for entry in self._idle[key]:
                    slot = self._slots.get(entry.mailbox)
                    (closing if slot and slot.id in wanted else keep).append(entry)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        self._close([entry.mailbox for entry in closing])

    def _renew(self) -> None:
        if time.monotonic() - self._renewed < RENEW_EVERY:
            return
        expires_at = timezone.now() + timedelta(seconds=LEASE_SECONDS)
        with self._lock:
            ids = list(self._claimed)
        ConnectionSlot.objects.filter(id__in=ids, holder=self.holder).update(expires_at=expires_at)
        with self._lock:
            for slot_id in ids:
                if slot_id in self._claimed:
                    self._claimed[slot_id].expires_at = expires_at
        self._renewed = time.monotonic()


pool = Pool()
