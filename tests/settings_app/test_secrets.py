"""The saved password never leaves in plaintext: logs, sessions, error reports, URLs, dumps."""

import logging
from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import call_command
from django.test import Client

from settings_app import services
from tests.conftest import APP_PASSWORD
from tests.settings_app.test_edit import form_data


def test_saving_logs_nothing_of_the_password(user_client, user, caplog):
    caplog.set_level(logging.DEBUG)

    response = user_client.post(
        "/settings/edit/", form_data(user, email_password=APP_PASSWORD), follow=True
    )

    assert response.status_code == 200
    assert APP_PASSWORD not in caplog.text


def test_the_session_holds_nothing_of_the_password(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD), follow=True)

    for session in Session.objects.all():
        assert APP_PASSWORD not in session.session_data
        assert APP_PASSWORD not in repr(session.get_decoded())


def test_urls_hold_nothing_of_the_password(user_client, user):
    response = user_client.post(
        "/settings/edit/", form_data(user, email_password=APP_PASSWORD), follow=True
    )

    for url, _ in response.redirect_chain:
        assert APP_PASSWORD not in url


def test_an_error_report_hides_the_password(user, settings, monkeypatch):
    settings.ADMINS = ["ops@example.test"]
    settings.DEBUG = False

    def fail(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "settings_update", fail)
    client = Client(raise_request_exception=False)
    client.force_login(user)

    response = client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    assert response.status_code == 500
    assert len(mail.outbox) == 1
    report = mail.outbox[0]
    assert "database went away" in report.body
    assert "email_password" in report.body  # the parameter is named, its value hidden
    everything = report.body + "".join(content for content, _ in report.alternatives)
    assert APP_PASSWORD not in everything


def test_a_data_dump_holds_only_the_token(user_client, user):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))
    out = StringIO()

    call_command("dumpdata", "settings_app", stdout=out)

    assert user.profile.email_password_token in out.getvalue()
    assert APP_PASSWORD not in out.getvalue()


@pytest.mark.parametrize("path", ["/settings/", "/settings/edit/", "/help/email-password/"])
def test_no_page_shows_the_password(user_client, user, path):
    user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))
    assert APP_PASSWORD not in user_client.get(path).content.decode()


def test_an_admin_error_report_hides_the_password(admin_user, user, settings, monkeypatch):
    from settings_app.admin import ProfileAdminForm
    from tests.settings_app.test_admin import change_url, inline_data

    settings.ADMINS = ["ops@example.test"]

    def fail(self, commit=True):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ProfileAdminForm, "save", fail)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)

    response = client.post(
        change_url(user), inline_data(user, **{"profile-0-email_password": APP_PASSWORD})
    )

    assert response.status_code == 500
    report = mail.outbox[0]
    assert "disk full" in report.body
    assert APP_PASSWORD not in report.body + "".join(c for c, _ in report.alternatives)
