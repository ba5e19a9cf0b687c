from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from settings_app import crypto, services
from settings_app.models import Profile
from tests.conftest import make_user


@pytest.fixture
def keys():
    """A new key and an old one; the profiles start encrypted under the old."""
    return Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def profiles(db, django_user_model, settings, keys):
    settings.ENCRYPTION_KEYS = [keys[1]]
    made = []
    for number in range(7):
        user = make_user(django_user_model, f"user{number}")
        profile = Profile.objects.create(user=user)
        profile.set_email_password(f"app-password-{number}")
        profile.save()
        made.append(profile)
    return made


def rotate(*args):
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_rotation_leaves_every_secret_readable_with_the_new_key_alone(profiles, settings, keys):
    new, old = keys
    settings.ENCRYPTION_KEYS = [new, old]

    out, _ = rotate("--batch-size", "3")

    assert "Rotated 7 secret(s); 0 already used the first key." in out
    settings.ENCRYPTION_KEYS = [new]
    for number, profile in enumerate(profiles):
        profile.refresh_from_db()
        assert profile.get_email_password() == f"app-password-{number}"


def test_running_it_twice_rotates_nothing_more(profiles, settings, keys):
    settings.ENCRYPTION_KEYS = list(keys)
    rotate()

    out, _ = rotate()

    assert "Rotated 0 secret(s); 7 already used the first key." in out


def test_an_interrupted_run_can_be_finished(profiles, settings, keys, monkeypatch):
    new, old = keys
    settings.ENCRYPTION_KEYS = [new, old]
    real_rotate = crypto.rotate
    calls = []

    def rotate_then_fail(token):
        calls.append(token)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_rotate(token)

    monkeypatch.setattr(crypto, "rotate", rotate_then_fail)
    with pytest.raises(KeyboardInterrupt):
        services.profile_tokens_rotate(batch_size=2)
    monkeypatch.setattr(crypto, "rotate", real_rotate)

    result = services.profile_tokens_rotate(batch_size=2)

    assert (result.rotated, result.current) == (3, 4)
    settings.ENCRYPTION_KEYS = [new]
    for number, profile in enumerate(profiles):
        profile.refresh_from_db()
        assert profile.get_email_password() == f"app-password-{number}"


def test_it_never_overwrites_a_password_saved_meanwhile(profiles, settings, keys, monkeypatch):
    new, old = keys
    settings.ENCRYPTION_KEYS = [new, old]
    first = profiles[0]
    real_rotate = crypto.rotate

    def rotate_while_user_saves(token):
        if token == first.email_password_token:
            saved = Profile.objects.get(pk=first.pk)
            saved.set_email_password("saved-meanwhile")
            saved.save()
        return real_rotate(token)

    monkeypatch.setattr(crypto, "rotate", rotate_while_user_saves)
    services.profile_tokens_rotate()

    first.refresh_from_db()
    assert first.get_email_password() == "saved-meanwhile"


def test_it_reports_secrets_no_key_can_read(profiles, settings, keys):
    settings.ENCRYPTION_KEYS = [keys[0]]

    out, err = rotate()

    assert "Rotated 0 secret(s)" in out
    assert "7 secret(s) could not be read" in err
    assert Profile.objects.exclude(email_password_token="").count() == 7  # nothing deleted


def test_it_stops_without_usable_keys(settings, db):
    settings.ENCRYPTION_KEYS = ["nonsense"]
    with pytest.raises(CommandError, match="not a Fernet key"):
        rotate()


def test_it_rotates_passwords_kept_in_webmail_sessions(user, settings, keys):
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from webmail.services import SESSION_PASSWORD

    new, old = keys
    settings.ENCRYPTION_KEYS = [old]
    session = SessionStore()
    session[SESSION_PASSWORD] = crypto.encrypt(
        "manual-password", owner=f"webmail-session:{user.pk}"
    )
    session.save()
    settings.ENCRYPTION_KEYS = [new, old]

    out, _ = rotate()

    assert "Rotated 1 secret(s)" in out
    settings.ENCRYPTION_KEYS = [new]
    token = Session.objects.get(pk=session.session_key).get_decoded()[SESSION_PASSWORD]
    assert crypto.decrypt(token, owner=f"webmail-session:{user.pk}") == "manual-password"
