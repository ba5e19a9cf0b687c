"""The one door to encryption: Fernet tokens under the keys in settings.ENCRYPTION_KEYS.

The first key encrypts and every key decrypts, so keys can be rotated by putting a new key first and
running `manage.py rotate_encryption_keys`. Each token carries the name of its owner inside the
encrypted text, so a token copied to another owner's row or session does not decrypt there.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

# Separates the owner from the secret inside a token; owners never contain it.
_SEPARATOR = "\x1f"


class DecryptionError(Exception):
    """A token that cannot be read with the configured keys for this owner."""


def keys_problem() -> str | None:
    """Describe what is wrong with ENCRYPTION_KEYS, or return None when they are usable."""
    if not settings.ENCRYPTION_KEYS:
        return "ENCRYPTION_KEYS is not set."
    for position, key in enumerate(settings.ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key)
        except ValueError:
            return (
                f"Key {position} in ENCRYPTION_KEYS is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            )
    return None


@cache
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    return MultiFernet([Fernet(key) for key in keys]), Fernet(keys[0])


def _configured() -> tuple[MultiFernet, Fernet]:
    problem = keys_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    return _fernets(tuple(settings.ENCRYPTION_KEYS))


@sensitive_variables("secret")
def encrypt(secret: str, *, owner: str) -> str:
    """Return a token holding `secret` that only decrypts for `owner`."""
    if _SEPARATOR in owner:
        raise ValueError("An owner name cannot contain the separator.")
    multi, _ = _configured()
    return multi.encrypt(f"{owner}{_SEPARATOR}{secret}".encode()).decode("ascii")


@sensitive_variables("plaintext", "secret")
def decrypt(token: str, *, owner: str, max_age: int | None = None) -> str:
    """Return the secret in `token`, or raise DecryptionError if it is not readable for `owner`
    (or, with `max_age`, if it was made more than that many seconds ago)."""
    try:
        multi, _ = _configured()
    except ImproperlyConfigured as exc:
        raise DecryptionError(str(exc)) from exc
    try:
        plaintext = multi.decrypt(token.encode("ascii"), ttl=max_age).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("The token cannot be decrypted with the configured keys.") from exc
    token_owner, separator, secret = plaintext.partition(_SEPARATOR)
    if not separator or token_owner != owner:
        raise DecryptionError("The token belongs to another owner.")
    return secret


def is_current(token: str) -> bool:
    """Tell whether `token` is already encrypted under the first key."""
    _, primary = _configured()
    try:
        primary.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt `token` under the first key; raise DecryptionError if no key reads it."""
    multi, _ = _configured()
    try:
        return multi.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("The token cannot be decrypted with the configured keys.") from exc
