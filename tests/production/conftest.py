"""Fixtures for drills against the app as production runs it: gunicorn on PostgreSQL."""

import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from devtools.serve import Gunicorn


@pytest.fixture
def database_url(transactional_db):
    """A URL for the test database; drills share committed data with the app's processes."""
    if connection.vendor != "postgresql":
        pytest.fail("The production drills run on PostgreSQL; set DATABASE_URL (make test does).")
    name = connection.settings_dict["NAME"]
    return lambda port=5432: f"postgres://postgres@127.0.0.1:{port}/{name}"


@pytest.fixture
def serve(database_url, tmp_path):
    """Start gunicorn with production settings; stopped after the test."""
    started = []

    def start(*, db_port=5432, workers=2, threads=8, **env):
        app = Gunicorn(
            {
                "SECRET_KEY": settings.SECRET_KEY,
                "ENCRYPTION_KEYS": ",".join(settings.ENCRYPTION_KEYS),
                "DATABASE_URL": database_url(db_port),
                **{name: str(value) for name, value in env.items()},
            },
            tmp_path / f"gunicorn-{len(started)}.log",
            workers=workers,
            threads=threads,
        )
        started.append(app)
        return app.start()

    yield start
    for app in started:
        app.stop()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def fetch(url: str, cookie: str = "", timeout: float = 30) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def imap_env(dovecot, **extra):
    return {
        "WEBMAIL_IMAP_HOST": dovecot.host,
        "WEBMAIL_IMAP_PORT": dovecot.port,
        "WEBMAIL_IMAP_CA_FILE": dovecot.ca_file,
        "WEBMAIL_IMAP_TIMEOUT": 10,
        **extra,
    }
