from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class SignInFailure(models.Model):
    """A password the mail server rejected, kept briefly to slow down repeated attempts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "failed_at"])]

    def __str__(self):
        return f"Rejected password of {self.user} at {self.failed_at:%Y-%m-%d %H:%M}"

    @classmethod
    def window(cls) -> timedelta:
        return timedelta(minutes=settings.WEBMAIL_SIGN_IN_WINDOW_MINUTES)

    @classmethod
    def record(cls, user) -> None:
        cls.objects.filter(user=user, failed_at__lt=timezone.now() - cls.window()).delete()
        cls.objects.create(user=user)

    @classmethod
    def retry_after(cls, user) -> timedelta | None:
        """How long `user` must wait before another attempt, or None if they may try now."""
        since = timezone.now() - cls.window()
        recent = list(
            cls.objects.filter(user=user, failed_at__gte=since)
            .order_by("-failed_at")
            .values_list("failed_at", flat=True)[: settings.WEBMAIL_SIGN_IN_ATTEMPTS]
        )
        if len(recent) < settings.WEBMAIL_SIGN_IN_ATTEMPTS:
            return None
        return recent[-1] + cls.window() - timezone.now()

    @classmethod
    def forget(cls, user) -> None:
        cls.objects.filter(user=user).delete()
