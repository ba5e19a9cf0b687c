from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone


@contextmanager
def unsynced():
    """A transaction PostgreSQL commits without waiting for the disk.

    For bookkeeping rows (connection slots, sign-in attempts) that expire by themselves:
    other processes see the commit at once either way, and losing the last moments of them in
    a database crash costs nothing. This saves a disk flush on each write made while a user
    waits to open Webmail (from a fraction of a millisecond to ten, by the disk).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield


def write_unsynced(sql: str, params: list) -> list[tuple]:
    """Run one writing statement, committed as unsynced() would, and return its RETURNING rows.

    A single statement in one round trip, where unsynced() takes four (BEGIN, SET, the
    statement, COMMIT): for the writes made on every sign-in. `sql` selects from
    {unsynced}, a one-row relation that on PostgreSQL turns off synchronous_commit for the
    statement's own transaction (set_config(..., true)) before it writes anything.
    """
    if connection.vendor == "postgresql":
        relation = "(SELECT set_config('synchronous_commit', 'off', true)) AS unsynced"
    else:
        relation = "(SELECT 1) AS unsynced"
    with connection.cursor() as cursor:
        cursor.execute(sql.format(unsynced=relation), params)
        return cursor.fetchall() if cursor.description else []


def _datetime(value):
    """`value` as the database takes it in raw SQL (SQLite keeps datetimes as text)."""
    return connection.ops.adapt_datetimefield_value(value)


def mailbox_name(address: str) -> str:
    """The form of an address the limits are kept under: `Victim@` and `victim@` are one."""
    return address.strip().lower()


class SignInFailure(models.Model):
    """A password attempt for a mailbox, recorded before it is tried and kept briefly.

    Counted twice: per app user and mailbox (WEBMAIL_SIGN_IN_ATTEMPTS), so one staff member
    who sends guesses only locks themselves out; and per mailbox across all users (twice that),
    so a mailbox never sees more wrong passwords than servers tolerate before locking the
    account (Exchange Online locks after ten), however many accounts send them.
    """

    mailbox = models.CharField(max_length=320)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+"
    )
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["mailbox", "failed_at"])]

    def __str__(self):
        return f"Password attempt for {self.mailbox} at {self.failed_at:%Y-%m-%d %H:%M}"

    @classmethod
    def window(cls) -> timedelta:
        return timedelta(minutes=settings.WEBMAIL_SIGN_IN_WINDOW_MINUTES)

    @classmethod
    def attempt(cls, mailbox: str, user) -> int:
        """Record an attempt on `mailbox` by `user` and return its id; raise SignInLimited if it
        may not be made.

        The row is written first and counted after: each attempt then sees every attempt
        committed before it, so of any number sent at once only the limit's worth go ahead.
        """
        mailbox = mailbox_name(mailbox)
        # Committed on its own (autocommit), so attempts made at once see each other.
        [(attempt,)] = write_unsynced(
            "INSERT INTO webmail_signinfailure (mailbox, user_id, failed_at) "
            "SELECT %s, %s, %s FROM {unsynced} RETURNING id",
            [mailbox, user.pk, _datetime(timezone.now())],
        )
        retry_after = cls.retry_after(mailbox, user)
        if retry_after is not None:
            cls.withdraw(attempt)  # refused before it was tried: it does not count
            raise SignInLimited(retry_after)
        return attempt

    @classmethod
    def withdraw(cls, attempt: int) -> None:
        """Forget an attempt that was not a password refused (the server failed, say)."""
        cls.objects.filter(id=attempt).delete()

    @classmethod
    def retry_after(cls, mailbox: str, user) -> timedelta | None:
        """How long before `user` may try `mailbox` again, or None while within the limits."""
        now = timezone.now()
        recent = list(
            cls.objects.filter(mailbox=mailbox_name(mailbox), failed_at__gte=now - cls.window())
            .order_by("-failed_at")
            .values_list("failed_at", "user_id")
        )
        per_user = settings.WEBMAIL_SIGN_IN_ATTEMPTS
        waits = [
            cls._wait([at for at, by in recent if by == user.pk], per_user, now),
            cls._wait([at for at, _ in recent], per_user * 2, now),
        ]
        waits = [wait for wait in waits if wait is not None]
        return max(waits) if waits else None

    @classmethod
    def _wait(cls, times: list, limit: int, now) -> timedelta | None:
        """None when `times` (newest first) hold at most `limit`; else until enough age out."""
        if len(times) <= limit:
            return None
        return max(timedelta(0), times[limit] + cls.window() - now)

    @classmethod
    def forget(cls, mailbox: str, user) -> None:
        """Clear `user`'s attempts on `mailbox` after the right password got in.

        Attempts older than the window go too, for every mailbox: they no longer count.
        """
        write_unsynced(
            "DELETE FROM webmail_signinfailure WHERE id IN (SELECT attempt.id FROM "
            "webmail_signinfailure AS attempt, {unsynced} WHERE (attempt.mailbox = %s AND "
            "(attempt.user_id = %s OR attempt.user_id IS NULL)) OR attempt.failed_at < %s)",
            [mailbox_name(mailbox), user.pk, _datetime(timezone.now() - cls.window())],
        )


class SignInLimited(Exception):
    """Too many attempts on a mailbox: by this user, or by everyone together."""

    def __init__(self, retry_after: timedelta):
        super().__init__(retry_after)
        self.retry_after = retry_after


class ConnectionSlot(models.Model):
    """One of the IMAP connections a mailbox may have open from Webmail, held by one process.

    Numbers run from 0 to WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX - 1 and each is unique per
    mailbox, so the database, not a count read before writing, keeps processes within the
    budget. A holder renews its leases while it runs; a killed one's slots expire.
    """

    mailbox = models.CharField(max_length=400)  # server and normalised user name
    number = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100)  # host, process id and a random part
    expires_at = models.DateTimeField()
    # Set by a process that waits for a slot: the holder closes the connection once it is idle.
    wanted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "number"], name="one_holder_per_slot")
        ]
        indexes = [models.Index(fields=["holder"])]

    def __str__(self):
        return f"Connection {self.number} to {self.mailbox}"

    @classmethod
    def take(cls, mailbox: str, number: int, holder: str, expires_at) -> int | None:
        """Insert the slot and return its id, or None if another holder has that number."""
        rows = write_unsynced(
            "INSERT INTO webmail_connectionslot (mailbox, number, holder, expires_at, wanted) "
            # WHERE true: SQLite's grammar needs it before ON CONFLICT in INSERT ... SELECT.
            "SELECT %s, %s, %s, %s, %s FROM {unsynced} WHERE true "
            "ON CONFLICT DO NOTHING RETURNING id",
            [mailbox, number, holder, _datetime(expires_at), False],
        )
        return rows[0][0] if rows else None


class Submission(models.Model):
    """One message sent from Webmail (or being sent), never its content.

    The form's token makes a double click or a resubmitted form send once; the recipient
    counts bound what one user sends per hour; rows still sending bound the sends at once
    per mailbox, whatever the process.
    """

    class State(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64)
    mailbox = models.CharField(max_length=320)
    state = models.CharField(max_length=10, choices=State.choices, default=State.SENDING)
    recipients = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "token"], name="one_submission_per_token")
        ]
        indexes = [
            models.Index(fields=["user", "started_at"]),
            models.Index(fields=["mailbox", "state"]),
        ]

    def __str__(self):
        return f"{self.get_state_display()}: {self.recipients} recipients from {self.mailbox}"
