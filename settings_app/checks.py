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
