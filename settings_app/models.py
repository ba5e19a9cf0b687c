import json

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.views.decorators.debug import sensitive_variables

from settings_app import crypto

# A signature goes into the body of every message: line breaks and tabs only, no other
# control characters (forms turn the browser's CR LF into LF first).
signature_text = RegexValidator(
    r"[\x00-\x08\x0b-\x1f\x7f]",
    inverse_match=True,
    message="The signature cannot contain control characters; only line breaks and tabs.",
)


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
    # Plain text put under new messages, replies and forwards in Webmail (after "-- ").
    signature = models.TextField(
        max_length=2000,
        blank=True,
        validators=[signature_text],
        help_text="Plain text added under the messages you write in Webmail.",
    )
    # A Fernet token (settings_app.crypto), never the password itself.
    email_password_token = models.TextField(blank=True, editable=False)
    webmail_access = models.CharField(
        max_length=10, choices=WebmailAccess.choices, default=WebmailAccess.MANUAL
    )
    # When the mail server last rejected the saved password; cleared by a new password or a
    # successful sign-in.
    email_password_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Microsoft 365 sign-in (settings_app.connection): how Webmail signs in to the mailbox.
    class EmailSignIn(models.TextChoices):
        PASSWORD = "password", "Email password / app password"
        MICROSOFT = "microsoft", "Microsoft 365 account"

    class MicrosoftStatus(models.TextChoices):
        CONNECTED = "connected", "Connected"
        NOT_CONNECTED = "not_connected", "Not connected"
        NEEDS_RECONNECTING = "needs_reconnecting", "Needs reconnecting"

    email_sign_in = models.CharField(
        max_length=10, choices=EmailSignIn.choices, default=EmailSignIn.PASSWORD
    )
    # A Fernet token holding the refresh token and the current access token, never in clear.
    microsoft_token = models.TextField(blank=True, editable=False)
    # The Microsoft account that connected (its user name), shown as "Connected as ...".
    microsoft_account = models.CharField(max_length=320, blank=True, editable=False)
    # When Microsoft stopped accepting the connection (invalid_grant); cleared by reconnecting.
    microsoft_failed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "contact information"
        verbose_name_plural = "contact information"
        constraints = [
            # The last guard behind the forms and services: Automatic with nothing saved would
            # send every Webmail visit to a sign-in that cannot happen.
            models.CheckConstraint(
                condition=models.Q(webmail_access="manual")
                | ~models.Q(email_password_token="")
                | models.Q(email_sign_in="microsoft"),
                name="automatic_needs_a_saved_password",
                violation_error_message="Automatic sign-in needs a saved email password.",
            )
        ]

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

    @property
    def automatic_without_password(self) -> bool:
        """Automatic password sign-in with no password saved: a state never to be stored."""
        return (
            self.signs_in_automatically
            and self.email_sign_in == self.EmailSignIn.PASSWORD
            and not self.has_email_password
        )

    # Microsoft 365 sign-in

    @property
    def _microsoft_owner(self) -> str:
        return f"microsoft:{self.user_id}"

    @property
    def signs_in_with_microsoft(self) -> bool:
        """Whether Webmail signs in with the Microsoft account (and Microsoft is configured)."""
        return self.email_sign_in == self.EmailSignIn.MICROSOFT and bool(
            settings.MICROSOFT_CLIENT_ID
        )

    @sensitive_variables("tokens")
    def set_microsoft_tokens(self, tokens: dict) -> None:
        """Keep `tokens` (refresh_token, access_token, expires_at) encrypted for this user."""
        self.microsoft_token = crypto.encrypt(json.dumps(tokens), owner=self._microsoft_owner)
        self.microsoft_failed_at = None

    def get_microsoft_tokens(self) -> dict:
        """Return the kept tokens; raise crypto.DecryptionError if they cannot be read."""
        return json.loads(crypto.decrypt(self.microsoft_token, owner=self._microsoft_owner))

    def clear_microsoft(self) -> None:
        self.microsoft_token = ""
        self.microsoft_account = ""
        self.microsoft_failed_at = None

    @property
    def microsoft_status(self) -> "Profile.MicrosoftStatus":
        if not self.microsoft_token:
            return self.MicrosoftStatus.NOT_CONNECTED
        if self.microsoft_failed_at is not None:
            return self.MicrosoftStatus.NEEDS_RECONNECTING
        try:
            self.get_microsoft_tokens()
        except crypto.DecryptionError:
            return self.MicrosoftStatus.NEEDS_RECONNECTING
        return self.MicrosoftStatus.CONNECTED


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
        SIGN_IN_CHANGED = "sign_in_changed", "Email sign-in changed"
        MICROSOFT_CONNECTED = "ms_connected", "Microsoft account connected"
        MICROSOFT_RECONNECTED = "ms_reconnected", "Microsoft account reconnected"
        MICROSOFT_DISCONNECTED = "ms_disconnected", "Microsoft account disconnected"
        MICROSOFT_FAILED = "ms_refresh_failed", "Microsoft connection stopped working"
        MICROSOFT_ROTATED = "ms_rotated", "Microsoft tokens re-encrypted"
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
