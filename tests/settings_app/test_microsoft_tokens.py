"""Refreshing Microsoft tokens: serialised per user, and never in error reports."""

import threading
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.db import connections
from django.test import Client

from settings_app import connection
from settings_app.models import Profile
from tests.settings_app.test_microsoft import CONNECT, connect


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_keep_the_newest_refresh_token(
    client, microsoft_user, identity_provider
):
    identity_provider.access_lifetime = 1  # the first access token needs refreshing at once
    client.force_login(microsoft_user)
    connect(client, identity_provider)
    identity_provider.access_lifetime = 3600
    identity_provider.delay = 0.5  # both requests are in flight together
    results, errors = [], []

    def open_webmail():
        try:
            results.append(connection._saved_access_token(microsoft_user))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_webmail) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1  # the second waited and used the first one's token
    assert identity_provider.token_requests.count("refresh_token") == 1
    kept = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()
    identity_provider.delay = 0
    # The kept refresh token is the newest: Microsoft still accepts it.
    connection.microsoft.token_refresh(kept["refresh_token"])


def test_an_error_report_hides_the_tokens(microsoft_user, identity_provider, settings, monkeypatch):
    settings.ADMINS = ["ops@example.test"]
    settings.DEBUG = False

    def fail(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(connection, "connect", fail)
    client = Client(raise_request_exception=False)
    client.force_login(microsoft_user)
    back = urlsplit(identity_provider.approve(client.post(CONNECT)["Location"]))
    response = client.get(f"{back.path}?{back.query}")
    assert response.status_code == 500
    report = mail.outbox[0]
    everything = report.body + "".join(content for content, _ in report.alternatives)
    assert "database went away" in everything
    grant = identity_provider._grants[-1]
    for secret in [grant.refresh_token, *grant.access_tokens]:
        assert secret not in everything
