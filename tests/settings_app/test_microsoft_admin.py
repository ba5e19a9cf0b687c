"""Admin: the sign-in method and Microsoft connection in the user list, and disconnecting."""

import re

from django.contrib.auth.models import Permission

from settings_app.models import AuditEvent, Profile
from tests.conftest import USER_PASSWORD
from tests.settings_app.test_microsoft import connect


def connect_carol(client, microsoft_user, identity_provider):
    client.force_login(microsoft_user)
    connect(client, identity_provider)
    client.logout()
    return Profile.objects.get(user=microsoft_user).get_microsoft_tokens()


def test_the_list_shows_sign_in_and_connection_never_tokens(
    client, admin_user, microsoft_user, identity_provider
):
    tokens = connect_carol(client, microsoft_user, identity_provider)
    client.force_login(admin_user)
    page = client.get("/admin/auth/user/").content.decode()
    assert "Email sign-in" in page and "Microsoft account connected" in page
    row = re.search(r"<tr>.*?carol.*?</tr>", page, re.S).group(0)
    assert "Microsoft 365 account" in row and 'alt="True"' in row
    change = client.get(f"/admin/auth/user/{microsoft_user.pk}/change/").content.decode()
    assert f"Connected as {microsoft_user.email}" in change
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret not in page and secret not in change


def test_an_admin_disconnects_and_it_is_audited(
    client, admin_user, microsoft_user, identity_provider
):
    connect_carol(client, microsoft_user, identity_provider)
    client.force_login(admin_user)
    response = client.post(
        "/admin/auth/user/",
        {"action": "disconnect_microsoft", "_selected_action": [microsoft_user.pk]},
        follow=True,
    )
    assert "Disconnected 1 Microsoft 365 account(s)." in response.content.decode()
    assert Profile.objects.get(user=microsoft_user).microsoft_token == ""
    event = AuditEvent.objects.get(action=AuditEvent.Action.MICROSOFT_DISCONNECTED)
    assert (event.actor_name, event.source) == ("admin", AuditEvent.Source.ADMIN)


def test_a_view_only_staff_member_cannot_disconnect(
    client, django_user_model, microsoft_user, identity_provider
):
    connect_carol(client, microsoft_user, identity_provider)
    viewer = django_user_model.objects.create_user(
        username="viewer", password=USER_PASSWORD, is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    page = client.get("/admin/auth/user/").content.decode()
    assert "disconnect_microsoft" not in page
    client.post(
        "/admin/auth/user/",
        {"action": "disconnect_microsoft", "_selected_action": [microsoft_user.pk]},
    )
    assert Profile.objects.get(user=microsoft_user).microsoft_token != ""
