"""Fixtures for drills against the app as production runs it: gunicorn on PostgreSQL."""

import logging
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from devtools.serve import Gunicorn


class Records(logging.Handler):
    """Keep every record a logger passes on."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def request_errors():
    """What django.request logs (it does not propagate to pytest's caplog)."""
    handler = Records()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer the test reads, not one it follows


class Browser:
    """A plain HTTP client with cookies, for forms against a running server (CSRF included)."""

    def __init__(self, base_url: str, cookie: str = "", **urlopen_options):
        self.base_url = base_url
        self.cookies = dict([cookie.split("=", 1)]) if cookie else {}
        self.opener = urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPSHandler(**urlopen_options)
        )

    def request(self, path: str, data: dict | None = None, headers: dict | None = None):
        """Return (status, headers, text); cookies the server sets are kept."""
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        request = urllib.request.Request(
            self.base_url + path, data=body, headers={"Cookie": cookie, **(headers or {})}
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                status, answer, text = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer, text = error.code, error.headers, error.read()
        for set_cookie in answer.get_all("Set-Cookie") or []:
            name, value = set_cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name.strip()] = value
        return status, answer, text.decode()

    def form_token(self, path: str) -> str:
        """The CSRF token of the form at `path` (its cookie is kept too)."""
        status, _, page = self.request(path)
        assert status == 200, (path, status)
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
