"""Shared fixtures: encryption keys, users and signed-in clients."""

import pytest
from cryptography.fernet import Fernet

from settings_app.models import Profile

# Made fresh for each run; real secrets never live in the tests.
TEST_KEY = Fernet.generate_key().decode()
APP_PASSWORD = "qwer-tyui-" + Fernet.generate_key().decode()[:12]
USER_PASSWORD = "Correct-horse-battery-1"


def pytest_configure(config):
    """Give the test run a secret key and an encryption key (settings take them from the env)."""
    from django.conf import settings

    settings.SECRET_KEY = "tests-" + TEST_KEY
    settings.ENCRYPTION_KEYS = [TEST_KEY]
    # Sign-in passwords are hashed on every created user; a slow hasher only slows the tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(
        username=username,
        email=f"{username}@example.test",
        password=USER_PASSWORD,
        first_name=username.title(),
        last_name="Example",
        **extra,
    )


@pytest.fixture
def user(db, django_user_model):
    return make_user(django_user_model, "alice")


@pytest.fixture
def other_user(db, django_user_model):
    return make_user(django_user_model, "bob")


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@example.test", password=USER_PASSWORD
    )


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def save_password(user, password=APP_PASSWORD, access=Profile.WebmailAccess.MANUAL):
    profile, _ = Profile.objects.get_or_create(user=user)
    profile.set_email_password(password)
    profile.webmail_access = access
    profile.save()
    return profile
