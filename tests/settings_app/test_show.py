from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password


def test_it_requires_sign_in(client, db):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/settings/")


def test_it_shows_personal_details_and_contact_information(user_client, user):
    save_password(user)
    user.profile.phone = "+44 20 7946 0000"
    user.profile.save()

    page = user_client.get("/settings/").content.decode()

    assert "Personal details" in page
    assert "Contact Information" in page
    assert "Alice Example" in page
    assert "alice@example.test" in page
    assert "+44 20 7946 0000" in page


def test_it_links_to_edit(user_client):
    page = user_client.get("/settings/").content.decode()
    assert 'href="/settings/edit/"' in page
    assert ">Edit</a>" in page


def test_it_shows_not_set_without_a_password(user_client):
    page = user_client.get("/settings/").content.decode()
    assert "Not set" in page
    assert "Manual" in page


def test_it_shows_saved_never_the_password(user_client, user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    page = user_client.get("/settings/").content.decode()

    assert "Saved" in page
    assert "Automatic" in page
    assert APP_PASSWORD not in page
    assert user.profile.email_password_token not in page


def test_it_shows_needs_reentry_when_the_key_was_removed(user_client, user, settings):
    save_password(user)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    response = user_client.get("/settings/")

    assert response.status_code == 200
    assert "Needs re-entry" in response.content.decode()


def test_it_shows_needs_reentry_when_no_key_is_configured(user_client, user, settings):
    save_password(user)
    settings.ENCRYPTION_KEYS = []

    response = user_client.get("/settings/")

    assert response.status_code == 200
    assert "Needs re-entry" in response.content.decode()


def test_it_shows_when_the_saved_password_was_rejected(user_client, user):
    profile = save_password(user)
    profile.email_password_rejected_at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    profile.save()

    page = user_client.get("/settings/").content.decode()

    assert "Your saved email password was rejected" in page
    assert "3 November 2026" in page
    assert 'href="/help/email-password/"' in page


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_refuses_changes(user_client, method):
    assert getattr(user_client, method)("/settings/").status_code == 405
