"""One address per user, and Automatic never without a password, whatever saves meanwhile."""

import importlib
from types import SimpleNamespace

import pytest
from django.core import checks
from django.db import IntegrityError, connection, transaction

from settings_app import services
from settings_app.forms import SettingsForm
from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password
from tests.settings_app.test_edit import form_data

email_migration = importlib.import_module("settings_app.migrations.0004_one_user_per_email_address")


def test_settings_refuses_an_address_another_user_has_whatever_its_case(
    user_client, user, other_user
):
    response = user_client.post(
        "/settings/edit/",
        form_data(user, email="BOB@example.test", phone="0123", email_password=APP_PASSWORD),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Another user already has this email address" in page
    assert 'value="0123"' in page  # what was typed is still there
    assert APP_PASSWORD not in page
    user.refresh_from_db()
    assert user.email == "alice@example.test"
    assert not Profile.objects.get(user=user).has_email_password


def test_settings_keeps_your_own_address_in_another_case(user_client, user):
    response = user_client.post("/settings/edit/", form_data(user, email="ALICE@example.test"))

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "ALICE@example.test"


def test_an_address_taken_between_the_check_and_the_save_is_refused(user, other_user):
    form = SettingsForm(form_data(user, email="carol@example.test"), user=user, profile=Profile())
    assert form.is_valid()
    type(other_user).objects.filter(pk=other_user.pk).update(email="Carol@example.test")

    assert form.save() is False
    assert "Another user already has this email address" in form.errors["email"][0]
    user.refresh_from_db()
    assert user.email == "alice@example.test"


def test_the_database_refuses_a_second_user_with_the_same_address(user, django_user_model):
    with pytest.raises(IntegrityError), transaction.atomic():
        django_user_model.objects.create_user("alice2", email="Alice@EXAMPLE.test")


def test_users_without_an_address_are_allowed(django_user_model, db):
    django_user_model.objects.create_user("nobody1", email="")
    django_user_model.objects.create_user("nobody2", email="")
    assert django_user_model.objects.filter(email="").count() == 2


def without_the_index():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {email_migration.INDEX}")  # rolled back after the test


def add_index():
    schema_editor = SimpleNamespace(connection=connection, execute=connection.cursor().execute)
    email_migration.create_index(None, schema_editor)


def test_the_migration_skips_the_index_and_the_check_names_shared_addresses(
    user, other_user, capsys
):
    without_the_index()
    type(user).objects.filter(pk=other_user.pk).update(email="ALICE@example.test")

    add_index()

    assert "1 address(es) belong to several users" in capsys.readouterr().out
    warnings = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    shared = [warning for warning in warnings if warning.id == "settings_app.W002"]
    assert len(shared) == 1 and "alice@example.test" in shared[0].msg


def test_the_migration_adds_the_index_once_addresses_are_fixed(user, other_user):
    without_the_index()
    type(user).objects.filter(pk=other_user.pk).update(email="ALICE@example.test")
    type(user).objects.filter(pk=other_user.pk).update(email="bob@example.test")

    add_index()

    with pytest.raises(IntegrityError), transaction.atomic():
        type(user).objects.filter(pk=other_user.pk).update(email="alice@EXAMPLE.test")
    assert not checks.run_checks(tags=[checks.Tags.database], databases=["default"])


def test_keeping_automatic_after_another_tab_removed_the_password_is_refused(user):
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    tab_b = SettingsForm(
        form_data(user, webmail_access="automatic"), user=user, profile=Profile.objects.get()
    )
    assert tab_b.is_valid()  # it checked the row as it was before tab A saved
    tab_a = SettingsForm(
        form_data(user, clear_email_password="on"), user=user, profile=Profile.objects.get()
    )
    assert tab_a.is_valid() and tab_a.save()

    assert tab_b.save() is False

    assert "the saved one was removed meanwhile" in tab_b.errors["webmail_access"][0]
    profile = Profile.objects.get(user=user)
    assert (profile.webmail_access, profile.email_password_token) == ("manual", "")


def test_the_database_refuses_automatic_without_a_saved_password(user):
    profile = save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(pk=profile.pk).update(email_password_token="")


def test_services_refuse_automatic_without_a_password(user):
    Profile.objects.create(user=user)

    with pytest.raises(services.SettingsConflict):
        services.settings_update(
            user=user,
            first_name="Alice",
            last_name="Example",
            email=user.email,
            phone="",
            new_password="",
            clear_password=False,
            webmail_access="automatic",
        )
    assert Profile.objects.get(user=user).webmail_access == "manual"
