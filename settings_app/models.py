from django.conf import settings
from django.db import models
from django.views.decorators.debug import sensitive_variables

from settings_app import crypto


class Profile(models.Model):
    """A user's contact information, saved email password and Webmail access mode."""

    class WebmailAccess(models.TextChoices):
        MANUAL = "manual", "Manual"
        AUTOMATIC = "automatic", "Automatic"

    class PasswordStatus(models.TextChoices):
        SAVED = "saved", "Saved"
        NOT_SET = "not_set", "Not set"
        NEEDS_REENTRY = "needs_reentry", "Needs re-entry"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    phone = models.CharField(max_length=32, blank=True)
    # A Fernet token (settings_app.crypto), never the password itself.
    email_password_token = models.TextField(blank=True, editable=False)
    webmail_access = models.CharField(
        max_length=10, choices=WebmailAccess.choices, default=WebmailAccess.MANUAL
    )
    # When the mail server last rejected the saved password; cleared by a new password or a
    # successful sign-in.
    email_password_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "contact information"
        verbose_name_plural = "contact information"

    def __str__(self):
        return f"Contact information of {self.user}"

    @property
    def _token_owner(self) -> str:
        return f"profile:{self.user_id}"

    @sensitive_variables("password")
    def set_email_password(self, password: str) -> None:
        self.email_password_token = crypto.encrypt(password, owner=self._token_owner)
        self.email_password_rejected_at = None

    def clear_email_password(self) -> None:
        """Forget the saved password; Automatic sign-in needs one, so access becomes Manual."""
        self.email_password_token = ""
        self.email_password_rejected_at = None
        self.webmail_access = self.WebmailAccess.MANUAL

    def get_email_password(self) -> str:
        """Return the saved password; raise crypto.DecryptionError if it cannot be read."""
        return crypto.decrypt(self.email_password_token, owner=self._token_owner)

    @property
    def has_email_password(self) -> bool:
        return bool(self.email_password_token)

    @property
    def email_password_status(self) -> "Profile.PasswordStatus":
        if not self.email_password_token:
            return self.PasswordStatus.NOT_SET
        try:
            self.get_email_password()
        except crypto.DecryptionError:
            return self.PasswordStatus.NEEDS_REENTRY
        return self.PasswordStatus.SAVED

    @property
    def signs_in_automatically(self) -> bool:
        return self.webmail_access == self.WebmailAccess.AUTOMATIC


def profile_for(user) -> Profile:
    """Return the user's profile, creating an empty one the first time."""
    try:
        return user.profile
    except Profile.DoesNotExist:
        profile, _ = Profile.objects.get_or_create(user=user)
        return profile


class AuditEvent(models.Model):
    """Who set, cleared or re-encrypted whose email password, changed whose Webmail access, or
    sent mail from Webmail (with how many recipients).

    Never holds the password, nor a message's content. Names are copied so the record outlives
    deleted users.
    """

    class Action(models.TextChoices):
        PASSWORD_SET = "password_set", "Email password set"
        PASSWORD_CLEARED = "password_cleared", "Email password cleared"
        PASSWORD_ROTATED = "password_rotated", "Email password re-encrypted"
        ACCESS_CHANGED = "access_changed", "Webmail access changed"
        MAIL_SENT = "mail_sent", "Mail sent from Webmail"

    class Source(models.TextChoices):
        SETTINGS = "settings", "Settings page"
        ADMIN = "admin", "Django admin"
        COMMAND = "command", "Management command"
        WEBMAIL = "webmail", "Webmail"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject_name = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=Action.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_action_display()} for {self.subject_name} by {self.actor_name}"
