import re
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.db.models.signals import post_init

from settings_app import crypto, services
from settings_app.models import AuditEvent, Profile
from tests.conftest import APP_PASSWORD, make_user, save_password


def inline_data(user, **changes):
    """The POST data of the admin's user change form, with the contact information inline."""
    profile = Profile.objects.filter(user=user).first()
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "1" if profile else "0",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-user": str(user.pk),
        "profile-0-phone": profile.phone if profile else "",
        "profile-0-email_password": "",
        "profile-0-webmail_access": profile.webmail_access if profile else "manual",
    }
    if profile:
        data["profile-0-id"] = str(profile.pk)
    data.update(changes)
    return data


def change_url(user):
    return f"/admin/auth/user/{user.pk}/change/"


def test_it_shows_saved_never_the_password(admin_client, user):
    save_password(user)

    page = admin_client.get(change_url(user)).content.decode()

    assert "Saved" in page
    assert APP_PASSWORD not in page
    assert user.profile.email_password_token not in page
    field = re.search(r'<input type="password" name="profile-0-email_password"[^>]*>', page)
    assert "value=" not in field.group(0)


def test_it_shows_not_set(admin_client, user):
    Profile.objects.create(user=user)
    assert "Not set" in admin_client.get(change_url(user)).content.decode()


def test_an_admin_sets_a_new_password(admin_client, user):
    Profile.objects.create(user=user)

    response = admin_client.post(
        change_url(user), inline_data(user, **{"profile-0-email_password": APP_PASSWORD})
    )

    assert response.status_code == 302, response.content.decode()
    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == APP_PASSWORD


def test_an_admin_sets_a_password_for_a_user_without_contact_information(admin_client, user):
    response = admin_client.post(
        change_url(user), inline_data(user, **{"profile-0-email_password": APP_PASSWORD})
    )

    assert response.status_code == 302, response.content.decode()
    assert Profile.objects.get(user=user).get_email_password() == APP_PASSWORD


def test_blank_keeps_the_password(admin_client, user):
    save_password(user)

    admin_client.post(change_url(user), inline_data(user, **{"profile-0-phone": "0123"}))

    user.profile.refresh_from_db()
    assert user.profile.phone == "0123"
    assert user.profile.get_email_password() == APP_PASSWORD


def test_an_admin_clears_the_password(admin_client, user):
    save_password(user)

    admin_client.post(
        change_url(user), inline_data(user, **{"profile-0-clear_email_password": "on"})
    )

    user.profile.refresh_from_db()
    assert user.profile.email_password_token == ""


def test_it_refuses_automatic_without_a_password(admin_client, user):
    Profile.objects.create(user=user)

    response = admin_client.post(
        change_url(user), inline_data(user, **{"profile-0-webmail_access": "automatic"})
    )

    assert response.status_code == 200
    assert "Automatic sign-in needs a saved email password" in response.content.decode()
    assert Profile.objects.get(user=user).webmail_access == "manual"


def test_a_rejected_form_does_not_echo_the_password(admin_client, user):
    Profile.objects.create(user=user)

    response = admin_client.post(
        change_url(user),
        inline_data(user, email="broken", **{"profile-0-email_password": APP_PASSWORD}),
    )

    assert response.status_code == 200
    assert APP_PASSWORD not in response.content.decode()


def test_the_list_shows_access_and_whether_a_password_is_saved(admin_client, user, other_user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    page = admin_client.get("/admin/auth/user/").content.decode()

    assert "Webmail access" in page
    assert "Email password saved" in page
    row = re.search(r"<tr>.*?alice.*?</tr>", page, re.S).group(0)
    assert "Automatic" in row and 'alt="True"' in row
    row = re.search(r"<tr>.*?bob.*?</tr>", page, re.S).group(0)
    assert "Manual" in row and 'alt="False"' in row
    assert APP_PASSWORD not in page


def test_the_list_filters_by_webmail_access(admin_client, user, other_user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    save_password(other_user)

    page = admin_client.get("/admin/auth/user/?profile__webmail_access=automatic").content.decode()

    assert "alice@example.test" in page
    assert "bob@example.test" not in page


def test_the_action_clears_saved_passwords(admin_client, user, other_user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    save_password(other_user)

    response = admin_client.post(
        "/admin/auth/user/",
        {"action": "clear_email_passwords", "_selected_action": [user.pk]},
        follow=True,
    )

    assert "Cleared 1 saved email password(s)." in response.content.decode()
    user.profile.refresh_from_db()
    other_user.profile.refresh_from_db()
    assert user.profile.email_password_token == ""
    assert user.profile.webmail_access == "manual"
    assert other_user.profile.get_email_password() == APP_PASSWORD


def test_the_action_switches_access_to_manual(admin_client, user, other_user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    save_password(other_user, access=Profile.WebmailAccess.AUTOMATIC)

    response = admin_client.post(
        "/admin/auth/user/",
        {"action": "switch_to_manual", "_selected_action": [user.pk, other_user.pk]},
        follow=True,
    )

    assert "Switched 2 user(s) to Manual." in response.content.decode()
    assert set(Profile.objects.values_list("webmail_access", flat=True)) == {"manual"}
    user.profile.refresh_from_db()
    assert user.profile.get_email_password() == APP_PASSWORD


def test_staff_without_admin_rights_cannot_open_the_admin(client, user):
    client.force_login(user)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_an_admin_creates_a_staff_user_with_a_password(admin_client):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "carol",
            "usable_password": "true",
            "password1": "Very-long-passphrase-42",
            "password2": "Very-long-passphrase-42",
            "profile-TOTAL_FORMS": "1",
            "profile-INITIAL_FORMS": "0",
            "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1",
            "profile-0-phone": "",
            "profile-0-email_password": APP_PASSWORD,
            "profile-0-webmail_access": "automatic",
        },
    )

    assert response.status_code == 302, response.content.decode()
    profile = Profile.objects.get(user__username="carol")
    assert profile.get_email_password() == APP_PASSWORD
    assert profile.webmail_access == "automatic"


def staff_client(client, django_user_model, *codenames):
    """A client signed in as a staff member holding only the named permissions."""
    staff = make_user(django_user_model, "viewer", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(staff)
    return client


VIEW_ONLY = ["view_user", "view_profile"]
MAY_CHANGE = ["view_user", "change_user", "view_profile", "change_profile"]
ACTIONS = ["clear_email_passwords", "switch_to_manual"]


@pytest.mark.parametrize(
    "codenames",
    [VIEW_ONLY, ["view_user", "change_user", "view_profile"]],
    ids=["view", "no-profile"],
)
def test_staff_who_may_not_change_contact_information_are_not_offered_the_actions(
    client, django_user_model, user, codenames
):
    viewer = staff_client(client, django_user_model, *codenames)

    response = viewer.get("/admin/auth/user/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "alice@example.test" in page
    for action in ACTIONS:
        assert f'value="{action}"' not in page


def test_staff_who_may_change_users_and_contact_information_are_offered_the_actions(
    client, django_user_model, user
):
    page = staff_client(client, django_user_model, *MAY_CHANGE).get("/admin/auth/user/")

    for action in ACTIONS:
        assert f'value="{action}"' in page.content.decode()


@pytest.mark.parametrize("action", ACTIONS)
def test_a_view_only_staff_member_cannot_forge_an_action(
    client, django_user_model, user, other_user, action
):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    save_password(other_user, access=Profile.WebmailAccess.AUTOMATIC)
    viewer = staff_client(client, django_user_model, *VIEW_ONLY)

    response = viewer.post(
        "/admin/auth/user/",
        {"action": action, "_selected_action": [user.pk, other_user.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code in (200, 403)
    for profile in Profile.objects.all():
        assert profile.get_email_password() == APP_PASSWORD
        assert profile.webmail_access == "automatic"
    assert not AuditEvent.objects.exists()


def test_staff_who_may_change_users_and_contact_information_can_clear_passwords(
    client, django_user_model, user
):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    editor = staff_client(client, django_user_model, *MAY_CHANGE)

    response = editor.post(
        "/admin/auth/user/",
        {"action": "clear_email_passwords", "_selected_action": [user.pk]},
        follow=True,
    )

    assert "Cleared 1 saved email password(s)." in response.content.decode()
    assert Profile.objects.get(user=user).email_password_token == ""


@contextmanager
def meanwhile(change):
    """Run `change` once, just after the admin has read a user's contact information."""
    done = []

    def receiver(sender, instance, **kwargs):
        if instance.pk is not None and not done:
            done.append(True)
            change()

    post_init.connect(receiver, sender=Profile)
    try:
        yield done
    finally:
        post_init.disconnect(receiver, sender=Profile)


@pytest.mark.parametrize(
    "changes",
    [{"profile-0-webmail_access": "manual"}, {"first_name": "Alicia"}, {"profile-0-phone": "0123"}],
    ids=["access", "name", "phone"],
)
def test_an_admin_save_keeps_a_rotation_made_meanwhile(admin_client, user, settings, changes):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    form = inline_data(user, **changes)
    settings.ENCRYPTION_KEYS = [new, old]

    with meanwhile(services.profile_tokens_rotate) as done:
        response = admin_client.post(change_url(user), form)

    assert done and response.status_code == 302, response.content.decode()
    profile = Profile.objects.get(user=user)
    assert crypto.is_current(profile.email_password_token)
    settings.ENCRYPTION_KEYS = [new]
    assert profile.get_email_password() == APP_PASSWORD


def test_an_admin_save_keeps_a_password_saved_in_settings_meanwhile(admin_client, user):
    save_password(user, password="the-old-app-password", access=Profile.WebmailAccess.AUTOMATIC)
    form = inline_data(user, **{"profile-0-phone": "0123"})

    def settings_save():
        services.settings_update(
            user=user,
            first_name=user.first_name,
            last_name=user.last_name,
            email=user.email,
            phone="",
            new_password=APP_PASSWORD,
            clear_password=False,
            webmail_access="automatic",
        )

    with meanwhile(settings_save) as done:
        response = admin_client.post(change_url(user), form)

    assert done and response.status_code == 302, response.content.decode()
    profile = Profile.objects.get(user=user)
    assert profile.get_email_password() == APP_PASSWORD
    assert profile.phone == "0123"


def test_an_admin_cannot_keep_automatic_when_the_password_was_removed_meanwhile(admin_client, user):
    save_password(user, access=Profile.WebmailAccess.MANUAL)
    form = inline_data(user, **{"profile-0-webmail_access": "automatic"})

    def removed_in_settings():
        Profile.objects.filter(user=user).update(email_password_token="")

    with meanwhile(removed_in_settings) as done:
        response = admin_client.post(change_url(user), form)

    assert done and response.status_code == 200
    assert "Automatic sign-in needs a saved email password" in response.content.decode()
    profile = Profile.objects.get(user=user)
    assert (profile.webmail_access, profile.email_password_token) == ("manual", "")


def test_the_admin_refuses_an_address_another_user_has_whatever_its_case(
    admin_client, user, other_user
):
    response = admin_client.post(
        change_url(user), inline_data(user, email="BOB@Example.TEST", first_name="Alicia")
    )

    assert response.status_code == 200
    assert "Another user already has this email address" in response.content.decode()
    user.refresh_from_db()
    assert (user.email, user.first_name) == ("alice@example.test", "Alice")


def test_the_admin_keeps_a_users_own_address_in_another_case(admin_client, user):
    response = admin_client.post(change_url(user), inline_data(user, email="ALICE@example.test"))

    assert response.status_code == 302, response.content.decode()
    user.refresh_from_db()
    assert user.email == "ALICE@example.test"
