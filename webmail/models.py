from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class SignInFailure(models.Model):
    """A password attempt for a mailbox, kept briefly to slow down repeated attempts.

    Kept by mailbox (the IMAP user name), not by app user: what must not happen is that one
    mailbox sees many wrong passwords, whoever in the app sends them.
    """

    mailbox = models.CharField(max_length=320)
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["mailbox", "failed_at"])]

    def __str__(self):
        return f"Password attempt for {self.mailbox} at {self.failed_at:%Y-%m-%d %H:%M}"

    @classmethod
    def window(cls) -> timedelta:
        return timedelta(minutes=settings.WEBMAIL_SIGN_IN_WINDOW_MINUTES)

    @classmethod
    def record(cls, mailbox: str) -> "SignInFailure":
        cls.objects.filter(mailbox=mailbox, failed_at__lt=timezone.now() - cls.window()).delete()
        return cls.objects.create(mailbox=mailbox)

    @classmethod
    def retry_after(cls, mailbox: str) -> timedelta | None:
        """How long before `mailbox` may be tried again, or None if it may be tried now."""
        since = timezone.now() - cls.window()
        recent = list(
            cls.objects.filter(mailbox=mailbox, failed_at__gte=since)
            .order_by("-failed_at")
            .values_list("failed_at", flat=True)[: settings.WEBMAIL_SIGN_IN_ATTEMPTS]
        )
        if len(recent) < settings.WEBMAIL_SIGN_IN_ATTEMPTS:
            return None
        return recent[-1] + cls.window() - timezone.now()

    @classmethod
    def forget(cls, mailbox: str) -> None:
        cls.objects.filter(mailbox=mailbox).delete()


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
