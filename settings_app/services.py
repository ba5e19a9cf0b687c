"""Changes to a user's settings that span the user and their profile."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from settings_app import crypto
from settings_app.models import AuditEvent, Profile, profile_for

EMAIL_TAKEN = "Another user already has this email address; each user needs their own."
AUTOMATIC_NEEDS_PASSWORD = (
    "Automatic sign-in needs a saved email password, and the saved one was removed meanwhile "
    "(perhaps in another tab). Enter your app password above, or choose Manual."
)


class SettingsConflict(Exception):
    """The change no longer fits what was saved meanwhile; `field` names the form field to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def email_taken(email: str, *, by_other_than=None) -> bool:
    """Tell whether a user other than `by_other_than` has this address, whatever its case."""
    if not email:
        return False
    others = get_user_model().objects.filter(email__iexact=email)
    if by_other_than is not None and by_other_than.pk is not None:
        others = others.exclude(pk=by_other_than.pk)
    return others.exists()


def audit_record(*, actor, subject, action: str, source: str, detail: str = "") -> AuditEvent:
    """Record a change to someone's email password or Webmail access (never the password)."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else "(command)",
        subject=subject,
        subject_name=subject.get_username(),
        action=action,
        source=source,
        detail=detail,
    )


def audit_profile_change(
    *,
    actor,
    subject,
    source: str,
    password_set: bool,
    password_cleared: bool,
    access_before: str,
    access_after: str,
) -> None:
    if password_cleared:
        audit_record(
            actor=actor, subject=subject, action=AuditEvent.Action.PASSWORD_CLEARED, source=source
        )
    if password_set:
        audit_record(
            actor=actor, subject=subject, action=AuditEvent.Action.PASSWORD_SET, source=source
        )
    if access_before != access_after:
        labels = dict(Profile.WebmailAccess.choices)
        audit_record(
            actor=actor,
            subject=subject,
            action=AuditEvent.Action.ACCESS_CHANGED,
            source=source,
            detail=f"{labels[access_before]} → {labels[access_after]}",
        )


@sensitive_variables("new_password")
def settings_update(
    *,
    user,
    first_name: str,
    last_name: str,
    email: str,
    phone: str,
    new_password: str,
    clear_password: bool,
    webmail_access: str,
    email_sign_in: str | None = None,
    signature: str | None = None,
) -> None:
    """Save the Settings form: blank `new_password` keeps the saved one.

    Raise SettingsConflict, saving nothing, when the address belongs to another user or when
    Automatic would be left without a password by a change saved meanwhile.
    """
    profile_for(user)
    with transaction.atomic():
        # Lock the row so two tabs saving at once apply one after the other, and check the
        # choices again against what the other tab left: the form checked an older row.
        profile = Profile.objects.select_for_update().get(user=user)
        access_before = profile.webmail_access
        if email_taken(email, by_other_than=user):
            raise SettingsConflict("email", EMAIL_TAKEN)
        if email != user.email:
            # A rejection was for the old address.
            profile.email_password_rejected_at = None
            if profile.microsoft_token:
                # The Microsoft connection was made for the old address: it must be remade.
                audit_record(
                    actor=user,
                    subject=user,
                    action=AuditEvent.Action.MICROSOFT_DISCONNECTED,
                    source=AuditEvent.Source.SETTINGS,
                    detail=f"{profile.microsoft_account[:150]} (email address changed)",
                )
                profile.clear_microsoft()
        profile.phone = phone
        if signature is not None:
            profile.signature = signature
        if clear_password:
            profile.clear_email_password()
        if new_password:
            profile.set_email_password(new_password)
        profile.webmail_access = webmail_access
        sign_in_before = profile.email_sign_in
        if email_sign_in:
            profile.email_sign_in = email_sign_in
        if profile.automatic_without_password:
            raise SettingsConflict("webmail_access", AUTOMATIC_NEEDS_PASSWORD)
        profile.save()
        user.first_name, user.last_name, user.email = first_name, last_name, email
        try:
            with transaction.atomic():
                user.save(update_fields=["first_name", "last_name", "email"])
        except IntegrityError:  # another user took the address after the check above
            user.refresh_from_db(fields=["first_name", "last_name", "email"])
            raise SettingsConflict("email", EMAIL_TAKEN) from None
        if sign_in_before != profile.email_sign_in:
            labels = dict(Profile.EmailSignIn.choices)
            audit_record(
                actor=user,
                subject=user,
                action=AuditEvent.Action.SIGN_IN_CHANGED,
                source=AuditEvent.Source.SETTINGS,
                detail=f"{labels[sign_in_before]} → {labels[profile.email_sign_in]}",
            )
        audit_profile_change(
            actor=user,
            subject=user,
            source=AuditEvent.Source.SETTINGS,
            password_set=bool(new_password),
            password_cleared=clear_password,
            access_before=access_before,
            access_after=profile.webmail_access,
        )


@dataclass
class RotationResult:
    rotated: int = 0
    current: int = 0
    unreadable: int = 0


def profile_tokens_rotate(
    *,
    field: str = "email_password_token",
    action: str = AuditEvent.Action.PASSWORD_ROTATED,
    batch_size: int = 500,
) -> RotationResult:
    """Re-encrypt every token kept in a profile's `field` under the first key, a batch at a time.

    Safe to interrupt and to run again: each batch commits on its own, tokens already under the
    first key are left alone, and a token saved while this runs is never overwritten.
    """
    result = RotationResult()
    last_pk = 0
    while True:
        batch = list(
            Profile.objects.exclude(**{field: ""})
            .filter(pk__gt=last_pk)
            .select_related("user")
            .order_by("pk")[:batch_size]
        )
        if not batch:
            return result
        with transaction.atomic():
            for profile in batch:
                token = getattr(profile, field)
                if crypto.is_current(token):
                    result.current += 1
                    continue
                try:
                    new_token = crypto.rotate(token)
                except crypto.DecryptionError:
                    result.unreadable += 1
                    continue
                # Only replace the token that was read: one saved meanwhile wins.
                if Profile.objects.filter(pk=profile.pk, **{field: token}).update(
                    **{field: new_token}
                ):
                    result.rotated += 1
                    audit_record(
                        actor=None,
                        subject=profile.user,
                        action=action,
                        source=AuditEvent.Source.COMMAND,
                        detail="rotate_encryption_keys",
                    )
        last_pk = batch[-1].pk
