import os

from django.conf import settings
from django.core import checks

from settings_app import crypto


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs, **kwargs):
    """Refuse to start without usable encryption keys, unless DEBUG is on and none are set."""
    if settings.ENCRYPTION_KEYS_FILE and not settings.ENCRYPTION_KEYS:
        return [
            checks.Error(
                f"ENCRYPTION_KEYS_FILE names {settings.ENCRYPTION_KEYS_FILE}, which cannot be "
                "read or holds no keys.",
                hint="Point it at a readable file with one Fernet key per line.",
                id="settings_app.E002",
            )
        ]
    problem = crypto.keys_problem()
    if problem is None:
        return []
    hint = (
        "Set ENCRYPTION_KEYS to one or more comma-separated Fernet keys (the first encrypts). "
        "Make one with: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'"
    )
    if not settings.ENCRYPTION_KEYS and settings.DEBUG:
        return [
            checks.Warning(
                problem + " Email passwords cannot be saved until it is.",
                hint=hint,
                id="settings_app.W001",
            )
        ]
    return [checks.Error(problem, hint=hint, id="settings_app.E001")]


@checks.register(checks.Tags.database)
def check_one_user_per_email_address(app_configs, databases=None, **kwargs):
    """Name addresses shared by several users: migration 0004 skips its unique index then."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError
    from django.db.models import Count
    from django.db.models.functions import Lower

    if not databases:
        return []
    try:
        shared = list(
            get_user_model()
            .objects.exclude(email="")
            .values(address=Lower("email"))
            .annotate(users=Count("pk"))
            .filter(users__gt=1)
            .values_list("address", flat=True)[:10]
        )
    except DatabaseError:  # tables not made yet: migrate runs the checks first
        return []
    if not shared:
        return []
    return [
        checks.Warning(
            "Several users share the email address(es) " + ", ".join(sorted(shared)) + ".",
            hint="Give each user their own address in the admin, then run "
            "`manage.py migrate settings_app 0003 && manage.py migrate settings_app` so the "
            "database refuses shared addresses too.",
            id="settings_app.W002",
        )
    ]


@checks.register(checks.Tags.security)
def check_microsoft(app_configs, **kwargs):
    """With Microsoft 365 sign-in turned on (a client id), its other settings must be usable."""
    if not settings.MICROSOFT_CLIENT_ID:
        return []
    errors = []
    if not settings.MICROSOFT_CLIENT_SECRET:
        where = settings.MICROSOFT_CLIENT_SECRET_FILE
        errors.append(
            checks.Error(
                f"MICROSOFT_CLIENT_SECRET_FILE names {where}, which cannot be read or is empty."
                if where
                else "MICROSOFT_CLIENT_ID is set but MICROSOFT_CLIENT_SECRET is not.",
                hint="Set the client secret of the app registered in Entra ID, or leave "
                "MICROSOFT_CLIENT_ID empty to turn Microsoft 365 sign-in off.",
                id="settings_app.E003",
            )
        )
    if not settings.MICROSOFT_AUTHORITY.startswith("https://"):
        errors.append(
            checks.Error(
                "MICROSOFT_AUTHORITY must be an https:// address.",
                hint="The default is https://login.microsoftonline.com.",
                id="settings_app.E004",
            )
        )
    if settings.MICROSOFT_CA_FILE and not os.access(settings.MICROSOFT_CA_FILE, os.R_OK):
        errors.append(
            checks.Error(
                f"MICROSOFT_CA_FILE names {settings.MICROSOFT_CA_FILE}, which cannot be read.",
                id="settings_app.E005",
            )
        )
    return errors
