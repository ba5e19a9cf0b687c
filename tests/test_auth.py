from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from clientmanager.sessions import SessionStore
from settings_app.backends import ProfileBackend
from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, USER_PASSWORD


@pytest.mark.parametrize("path", ["/", "/settings/", "/settings/edit/", "/webmail/"])
def test_pages_require_sign_in(client, db, path):
    response = client.get(path, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_the_help_page_is_public(client, db):
    response = client.get("/help/email-password/")
    assert response.status_code == 200


def test_the_help_page_explains_app_passwords(client, db):
    page = client.get("/help/email-password/").content.decode()
    for words in [
        "multi-factor",
        "Security info",
        "Add method",
        "App password",
        "Contact Information",
        "Email password",
        "ask your IT administrator",
    ]:
        assert words in page


def test_a_user_signs_in_and_lands_on_settings(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": USER_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/settings/"
    assert "Alice Example" in response.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_the_header_offers_settings_webmail_and_sign_out(user_client):
    page = user_client.get("/settings/").content.decode()
    assert 'href="/settings/"' in page
    assert 'href="/webmail/"' in page
    assert 'action="/accounts/logout/"' in page


def test_signing_out_ends_the_session(user_client):
    user_client.post("/accounts/logout/")
    response = user_client.get("/settings/")
    assert response.status_code == 302


@pytest.mark.parametrize("next_url", ["//evil.example", "https://evil.example/", "/\\evil.example"])
def test_signing_in_with_a_next_address_elsewhere_stays_on_the_site(client, user, next_url):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": USER_PASSWORD, "next": next_url}
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/"


def test_the_sign_in_page_is_never_stored(client, db):
    response = client.get("/accounts/login/")

    assert "no-store" in response["Cache-Control"]


def test_signed_out_pages_are_not_kept_for_the_back_button(user_client):
    shown = user_client.get("/settings/")
    user_client.post("/accounts/logout/")

    assert "no-store" in shown["Cache-Control"]  # the browser must ask again, and is refused
    assert user_client.get("/settings/").status_code == 302


# Every signed-in page loads its session and user with hand-written SQL (clientmanager.sessions,
# settings_app.backends): these hold it to what Django's own loading does.


def test_a_signed_in_page_loads_the_session_and_the_user_with_the_profile_in_two_queries(
    user_client, user, django_assert_num_queries
):
    Profile.objects.create(user=user, phone="+44 20 7946 0000")

    with django_assert_num_queries(2):  # the session, then the user joined to the profile
        page = user_client.get("/settings/").content.decode()

    assert "+44 20 7946 0000" in page


def test_a_user_is_loaded_exactly_as_the_database_holds_them(user):
    user.last_login = datetime(2026, 11, 30, 9, 15, 7, 123456, tzinfo=UTC)
    user.save()
    profile = Profile(
        user=user,
        phone="020 7946 0000",
        signature="Kind regards,\nAlice",
        webmail_access="automatic",
        email_password_rejected_at=datetime(2026, 11, 29, 18, 0, tzinfo=UTC),
    )
    profile.set_email_password(APP_PASSWORD)
    profile.save()

    loaded = ProfileBackend().get_user(str(user.pk))  # sessions keep the id as text

    expected_user = type(user).objects.get(pk=user.pk)
    for field in expected_user._meta.concrete_fields:
        value, expected = getattr(loaded, field.attname), getattr(expected_user, field.attname)
        assert (value, type(value)) == (expected, type(expected)), field.name
    assert loaded.is_active is True and loaded.last_login.tzinfo is not None
    expected_profile = Profile.objects.get(pk=profile.pk)
    for field in Profile._meta.concrete_fields:
        value, expected = (
            getattr(loaded.profile, field.attname),
            getattr(expected_profile, field.attname),
        )
        assert (value, type(value)) == (expected, type(expected)), field.name
    assert loaded.profile.user is loaded
    assert loaded.profile.get_email_password() == APP_PASSWORD
    assert loaded.check_password(USER_PASSWORD)


def test_a_user_with_no_profile_yet_opens_settings(user_client, user):
    response = user_client.get("/settings/")

    assert response.status_code == 200
    assert Profile.objects.filter(user=user).exists()


def test_a_deactivated_user_is_signed_out_at_their_next_page(user_client, user):
    user.is_active = False
    user.save()

    assert user_client.get("/settings/")["Location"].startswith("/accounts/login/")


def test_a_deleted_user_is_signed_out_at_their_next_page(user_client, user):
    user.delete()

    assert user_client.get("/settings/")["Location"].startswith("/accounts/login/")


def test_a_new_password_signs_out_every_other_browser(user_client, user):
    user.set_password("Another-horse-battery-2")
    user.save()

    assert user_client.get("/settings/")["Location"].startswith("/accounts/login/")


def test_an_expired_session_is_signed_out(user_client):
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    assert user_client.get("/settings/")["Location"].startswith("/accounts/login/")


def test_a_session_deleted_meanwhile_is_saved_under_a_new_key(db):
    first = SessionStore()
    first["step"] = 1
    first.save()
    Session.objects.all().delete()  # signed out elsewhere, or cleared by clearsessions

    again = SessionStore(first.session_key)
    again["step"] = 2
    again.save()  # Django's store would refuse to update a row that is gone

    assert again.session_key != first.session_key
    assert SessionStore(again.session_key).load() == {"step": 2}


def test_a_user_with_no_profile_is_known_to_have_none_without_asking_again(
    user, django_assert_num_queries
):
    loaded = ProfileBackend().get_user(user.pk)

    with django_assert_num_queries(0), pytest.raises(Profile.DoesNotExist):
        loaded.profile  # noqa: B018 (the read is the test)
