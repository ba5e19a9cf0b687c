import re

import pytest
from django.db import connection
from django.test import Client

from settings_app import crypto
from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password


def form_data(user, **changes):
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone": "",
        "email_password": "",
        "webmail_access": "manual",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def test_it_offers_every_field(user_client):
    page = user_client.get("/settings/edit/").content.decode()

    for name in ["first_name", "last_name", "email", "phone", "email_password", "webmail_access"]:
        assert f'name="{name}"' in page
    assert 'value="manual"' in page and 'value="automatic"' in page
    assert ">Save</button>" in page
    assert 'href="/settings/">Cancel</a>' in page


def test_it_offers_to_remove_a_saved_password(user_client, user):
    save_password(user)
    page = user_client.get("/settings/edit/").content.decode()
    assert 'name="clear_email_password"' in page
    assert "Remove saved password" in page


def test_it_never_prefills_the_password(user_client, user):
    save_password(user)

    page = user_client.get("/settings/edit/").content.decode()

    field = re.search(r'<input type="password"[^>]*name="email_password"[^>]*>', page).group(0)
    assert "value=" not in field
    assert APP_PASSWORD not in page


def test_it_links_the_password_help(user_client):
    page = user_client.get("/settings/edit/").content.decode()
    assert 'href="/help/email-password/"' in page
    assert "aria-describedby" in page


def test_it_saves_and_redirects_with_a_message(user_client, user):
    response = user_client.post(
        "/settings/edit/",
        form_data(
            user,
            first_name="Alicia",
            phone="+44 20 7946 0001",
            email_password=APP_PASSWORD,
            webmail_access="automatic",
        ),
        follow=True,
    )

    assert response.redirect_chain == [("/settings/", 302)]
    assert "Your settings were saved." in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Alicia"
    assert user.profile.phone == "+44 20 7946 0001"
    assert user.profile.webmail_access == "automatic"
    assert user.profile.get_email_password() == APP_PASSWORD


def test_it_stores_only_a_token(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    token = Profile.objects.values_list("email_password_token", flat=True).get(user=user)
    assert token.startswith("gAAAAA")  # a Fernet token
    assert APP_PASSWORD not in token


def test_the_raw_database_row_holds_no_plaintext(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM settings_app_profile")
        rows = cursor.fetchall()
    assert rows
    assert APP_PASSWORD not in repr(rows)


def test_it_trims_whitespace_around_a_pasted_password(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=f"  {APP_PASSWORD}\t "))

    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == APP_PASSWORD


def test_it_keeps_password_when_blank(user_client, user):
    save_password(user)

    user_client.post("/settings/edit/", form_data(user, last_name="Changed", email_password=""))

    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == APP_PASSWORD


def test_it_replaces_the_password(user_client, user):
    save_password(user)

    user_client.post("/settings/edit/", form_data(user, email_password="new-app-password"))

    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == "new-app-password"


def test_it_removes_the_saved_password(user_client, user):
    save_password(user)

    user_client.post("/settings/edit/", form_data(user, clear_email_password="on"))

    user.profile.refresh_from_db()
    assert user.profile.email_password_token == ""
    assert "Not set" in user_client.get("/settings/").content.decode()


def test_it_refuses_automatic_without_a_password(user_client, user):
    response = user_client.post(
        "/settings/edit/", form_data(user, first_name="Changed", webmail_access="automatic")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Automatic sign-in needs a saved email password" in page
    assert re.search(r'id="id_webmail_access_error"', page)
    user.refresh_from_db()
    assert user.first_name == "Alice"  # nothing was saved
    assert Profile.objects.get(user=user).webmail_access == "manual"


def test_it_refuses_automatic_when_removing_the_password(user_client, user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    response = user_client.post(
        "/settings/edit/",
        form_data(user, clear_email_password="on", webmail_access="automatic"),
    )

    assert "Automatic sign-in needs a saved email password" in response.content.decode()
    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == APP_PASSWORD


def test_it_refuses_automatic_when_the_saved_password_needs_reentry(user_client, user, settings):
    save_password(user)
    settings.ENCRYPTION_KEYS = [crypto.Fernet.generate_key().decode()]

    response = user_client.post("/settings/edit/", form_data(user, webmail_access="automatic"))

    assert "Automatic sign-in needs a saved email password" in response.content.decode()


def test_it_allows_automatic_with_a_saved_password(user_client, user):
    save_password(user)

    response = user_client.post("/settings/edit/", form_data(user, webmail_access="automatic"))

    assert response.status_code == 302
    user.profile.refresh_from_db()
    assert user.profile.webmail_access == "automatic"


def test_it_does_not_echo_the_password_when_the_form_has_errors(user_client, user):
    response = user_client.post(
        "/settings/edit/", form_data(user, email="not-an-email", email_password=APP_PASSWORD)
    )

    assert response.status_code == 200
    assert APP_PASSWORD not in response.content.decode()
    assert Profile.objects.get(user=user).email_password_token == ""


@pytest.mark.parametrize("password", ["abc\r\nA1 LOGOUT", "abc\x00def"])
def test_it_refuses_control_characters_in_the_password(user_client, user, password):
    response = user_client.post("/settings/edit/", form_data(user, email_password=password))

    assert "cannot contain control characters" in response.content.decode()
    assert Profile.objects.get(user=user).email_password_token == ""


def test_it_refuses_an_invalid_phone_number(user_client, user):
    response = user_client.post("/settings/edit/", form_data(user, phone="<script>"))
    assert "Use digits, spaces" in response.content.decode()


def test_it_explains_when_encryption_is_not_set_up(user_client, user, settings):
    settings.ENCRYPTION_KEYS = []

    response = user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    assert response.status_code == 200
    assert "encryption is not set up" in response.content.decode()


def test_it_refuses_a_post_without_csrf_token(user, db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    assert response.status_code == 403
    assert Profile.objects.filter(user=user).exclude(email_password_token="").count() == 0


def test_it_only_ever_changes_the_signed_in_user(user_client, user, other_user):
    save_password(other_user, password="bobs-app-password")

    # Fields naming another user are ignored: the form only ever edits the signed-in user.
    user_client.post(
        "/settings/edit/",
        form_data(user, email_password=APP_PASSWORD, user_id=other_user.pk, username="bob"),
    )

    other_user.refresh_from_db()
    assert other_user.profile.get_email_password() == "bobs-app-password"
    assert other_user.first_name == "Bob"


def test_it_shows_only_the_signed_in_users_settings(user_client, other_user):
    save_password(other_user, password="bobs-app-password")
    other_user.profile.phone = "0999 999 999"
    other_user.profile.save()

    page = user_client.get("/settings/edit/").content.decode()

    assert "bob@example.test" not in page
    assert "0999 999 999" not in page


def test_a_token_copied_to_another_users_row_does_not_decrypt(user, other_user, user_client):
    bobs = save_password(other_user, password="bobs-app-password")
    alices = Profile.objects.get_or_create(user=user)[0]
    alices.email_password_token = bobs.email_password_token
    alices.save()

    with pytest.raises(crypto.DecryptionError):
        alices.get_email_password()
    assert "Needs re-entry" in user_client.get("/settings/").content.decode()
