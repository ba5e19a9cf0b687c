"""The audit trail: who changed whose password or Webmail access, and when; never the value."""

from cryptography.fernet import Fernet
from django.core.management import call_command

from settings_app.models import AuditEvent, Profile
from tests.conftest import APP_PASSWORD, save_password
from tests.settings_app.test_admin import change_url, inline_data
from tests.settings_app.test_edit import form_data


def events():
    return [
        (event.actor_name, event.subject_name, event.action, event.source, event.detail)
        for event in AuditEvent.objects.order_by("pk")
    ]


def test_the_settings_page_records_password_and_access_changes(user_client, user):
    user_client.post(
        "/settings/edit/", form_data(user, email_password=APP_PASSWORD, webmail_access="automatic")
    )
    user_client.post("/settings/edit/", form_data(user, clear_email_password="on"))

    assert events() == [
        ("alice", "alice", "password_set", "settings", ""),
        ("alice", "alice", "access_changed", "settings", "Manual → Automatic"),
        ("alice", "alice", "password_cleared", "settings", ""),
        ("alice", "alice", "access_changed", "settings", "Automatic → Manual"),
    ]


def test_saving_without_changes_records_nothing(user_client, user):
    user_client.post("/settings/edit/", form_data(user, first_name="Alicia"))
    assert events() == []


def test_the_admin_records_who_changed_whom(admin_client, user):
    Profile.objects.create(user=user)

    admin_client.post(
        change_url(user),
        inline_data(
            user,
            **{"profile-0-email_password": APP_PASSWORD, "profile-0-webmail_access": "automatic"},
        ),
    )

    assert events() == [
        ("admin", "alice", "password_set", "admin", ""),
        ("admin", "alice", "access_changed", "admin", "Manual → Automatic"),
    ]


def test_admin_actions_are_recorded(admin_client, user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    admin_client.post(
        "/admin/auth/user/", {"action": "switch_to_manual", "_selected_action": [user.pk]}
    )
    admin_client.post(
        "/admin/auth/user/", {"action": "clear_email_passwords", "_selected_action": [user.pk]}
    )

    assert events() == [
        ("admin", "alice", "access_changed", "admin", "Automatic → Manual"),
        ("admin", "alice", "password_cleared", "admin", ""),
    ]


def test_rotation_is_recorded(user, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    save_password(user)
    settings.ENCRYPTION_KEYS = [new, old]

    call_command("rotate_encryption_keys", stdout=None)

    assert events() == [
        ("(command)", "alice", "password_rotated", "command", "rotate_encryption_keys")
    ]


def test_the_trail_never_holds_the_password(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))
    assert APP_PASSWORD not in repr(list(AuditEvent.objects.values()))


def test_admins_read_the_trail_but_cannot_change_it(admin_client, user):
    save_password(user)
    from settings_app.services import audit_record

    event = audit_record(actor=user, subject=user, action="password_set", source="settings")

    listing = admin_client.get("/admin/settings_app/auditevent/")
    assert listing.status_code == 200
    assert "Email password set" in listing.content.decode()
    assert admin_client.get("/admin/settings_app/auditevent/add/").status_code == 403
    detail = admin_client.get(f"/admin/settings_app/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert 'name="action"' not in detail.content.decode()  # shown, not editable
    assert (
        admin_client.post(f"/admin/settings_app/auditevent/{event.pk}/delete/").status_code == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()
