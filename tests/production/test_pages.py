"""Every page as a whole: never cached, strict CSP, 404 for impossible addresses, bugs shown as
bugs (logged, 500) and never blamed on the mail server, and a request log no one can forge."""

import logging
import re

import pytest
from django.test import Client

from tests.conftest import APP_PASSWORD
from tests.production.test_access import POST_ONLY, PUBLIC, SIGNED_IN_PAGES
from webmail.pool import pool

# Addresses that show mail or settings, each with something to show (the fixture mailbox).
MAIL_AND_SETTINGS = {
    "settings": "/settings/",
    "settings edit": "/settings/edit/",
    "folder": "/webmail/",
    "search": "/webmail/?q=Message&field=subject",
    "message": "/webmail/message/58/",
    "message as text": "/webmail/message/58/?view=text",
    "body frame": "/webmail/message/58/body/",
    "source": "/webmail/message/59/source/",
    "attachment": "/webmail/message/59/part/2/",
    "missing message": "/webmail/message/4000/",
}


def never_stored(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.mark.parametrize("path", MAIL_AND_SETTINGS.values(), ids=MAIL_AND_SETTINGS.keys())
def test_pages_with_mail_or_settings_are_never_stored(user_client, automatic_user, path):
    response = user_client.get(path)

    assert response.status_code in (200, 404)
    assert never_stored(response), response.get("Cache-Control")


def test_the_webmail_sign_in_form_is_never_stored(user_client, user, mailbox):
    shown = user_client.get("/webmail/")
    rejected = user_client.post("/webmail/sign-in/", {"password": "wrong"})

    assert 'name="password"' in shown.content.decode()
    assert never_stored(shown)
    assert rejected.status_code == 200 and never_stored(rejected)


def test_a_mail_server_fault_page_is_never_stored(user_client, automatic_user, settings):
    settings.WEBMAIL_IMAP_PORT = 1  # nothing listens there

    response = user_client.get("/webmail/")

    assert response.status_code == 503
    assert never_stored(response)


def test_static_files_keep_their_long_caching(client, db):
    page = client.get("/accounts/login/").content.decode()
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page).group(1)

    response = client.get(stylesheet)

    assert "no-store" not in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]


IMPOSSIBLE_UIDS = ["0", "00", str(2**32), str(2**32 + 58), "99999999999", "-1"]


@pytest.mark.parametrize("uid", IMPOSSIBLE_UIDS)
@pytest.mark.parametrize("page", ["", "body/", "source/", "part/2/"])
def test_impossible_uids_are_not_found_without_asking_the_server(
    user_client, automatic_user, mailbox, uid, page
):
    logins_before = mailbox.dovecot.log_file.read_text().count(f"user=<{mailbox.email}>")

    response = user_client.get(f"/webmail/message/{uid}/{page}")

    assert response.status_code == 404
    assert "mail server" not in response.content.decode()
    logins_after = mailbox.dovecot.log_file.read_text().count(f"user=<{mailbox.email}>")
    assert logins_after == logins_before  # the address alone was enough to refuse


def test_the_largest_possible_uid_is_asked_for(user_client, automatic_user):
    response = user_client.get(f"/webmail/message/{2**32 - 1}/")

    assert response.status_code == 404  # asked, and the server has no such message
    assert "This message is no longer in this folder." in response.content.decode()


@pytest.fixture
def broken_folder_list(settings, tmp_path):
    """A real template error in the folder list, which renders inside the mailbox block."""
    (tmp_path / "webmail" / "includes").mkdir(parents=True)
    (tmp_path / "webmail" / "includes" / "folders.jinja").write_text(
        "{% for folder in folders %}{{ folder.name|no_such_filter }}{% endfor %}"
    )
    templates = [dict(engine) for engine in settings.TEMPLATES]
    [jinja2] = [engine for engine in templates if engine["BACKEND"].endswith("Jinja2")]
    jinja2["DIRS"] = [tmp_path, *jinja2["DIRS"]]
    settings.TEMPLATES = templates
    return tmp_path


def test_a_bug_inside_a_mailbox_block_is_a_logged_server_error(
    automatic_user, broken_folder_list, request_errors
):
    client = Client(raise_request_exception=False)
    client.force_login(automatic_user)

    response = client.get("/webmail/")

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "mail server" not in page
    errors = [r for r in request_errors if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert type(errors[0].exc_info[1]).__name__ == "TemplateSyntaxError"
    assert "no_such_filter" in str(errors[0].exc_info[1])


def test_after_a_bug_the_mailbox_opens_again(
    automatic_user, broken_folder_list, request_errors, settings
):
    client = Client(raise_request_exception=False)
    client.force_login(automatic_user)
    assert client.get("/webmail/").status_code == 500

    settings.TEMPLATES = [  # the bug is mended
        {**engine, "DIRS": [path for path in engine["DIRS"] if path != broken_folder_list]}
        for engine in settings.TEMPLATES
    ]
    response = client.get("/webmail/")

    assert response.status_code == 200
    assert "Message 60" in response.content.decode() or "Grüße" in response.content.decode()


def test_a_mail_server_fault_is_still_blamed_on_the_server(
    user_client, automatic_user, settings, request_errors
):
    settings.WEBMAIL_IMAP_PORT = 1

    response = user_client.get("/webmail/message/58/")

    assert response.status_code == 503
    assert "mail server" in response.content.decode()
    assert not [r for r in request_errors if r.exc_info]  # an answer, not a bug: no traceback


@pytest.mark.parametrize(
    "path",
    [
        "/healthz%0a2026-11-30 07:00:00,000 INFO clientmanager.requests [x] GET /admin/ 200",
        "/healthz%0d%0aGET /admin/ 200",
        "/nothing%e2%80%a8GET /admin/ 200",
        "/nothing%1b[2J",
        "/nothing 200 1.0ms user=1",
    ],
)
def test_a_path_cannot_forge_or_split_a_request_log_line(client, db, caplog, path):
    caplog.set_level(logging.INFO, logger="clientmanager.requests")

    client.get(path)

    lines = [r.getMessage() for r in caplog.records if r.name == "clientmanager.requests"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /")
    assert re.fullmatch(r"GET \S+ 404 [0-9.]+ms user=- ip=\S+ imap=0", lines[0]), lines[0]
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", lines[0])


def test_a_strange_method_is_logged_escaped(client, db, caplog):
    caplog.set_level(logging.INFO, logger="clientmanager.requests")

    client.generic("GET\nPOST", "/healthz")

    line = next(r.getMessage() for r in caplog.records if r.name == "clientmanager.requests")
    assert "\n" not in line
    assert line.startswith("GET\\nPOST /healthz ")


def strict_policy(policy: str) -> bool:
    """Scripts only from the app (or with this response's nonce), no remote sources, framed by
    the app alone; or stricter still: nothing by default (the body frame, downloads)."""
    parts = [part.strip() for part in policy.split(";") if part.strip()]
    directives = {part.split(" ", 1)[0]: part.partition(" ")[2] for part in parts}
    if directives.get("default-src") == "'none'" and "script-src" not in directives:
        return "http" not in policy
    return (
        directives.get("default-src") == "'self'"
        and directives.get("frame-ancestors") == "'self'"
        and re.fullmatch(r"'self'( 'nonce-[^']+')?", directives.get("script-src", "")) is not None
        and "http" not in policy
    )


def every_page() -> dict[str, str]:
    """The whole URL table, each page with mail to show, and the pages for errors."""
    return {
        **PUBLIC,
        **SIGNED_IN_PAGES,
        **{f"{name} by GET (405)": path for name, path in POST_ONLY.items()},
        **MAIL_AND_SETTINGS,
        "no such page (404)": "/no/such/page/",
        "impossible UID (404)": "/webmail/message/0/",
        "no such folder (404)": "/webmail/?folder=Nowhere",
    }


@pytest.fixture
def typed_and_saved(automatic_user, user_client):
    """The password saved in Settings and typed into Webmail for this session too."""
    assert user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD}).status_code == 302
    return user_client


def content_of(response) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return data.decode(errors="replace")


@pytest.mark.parametrize("path", every_page().values(), ids=every_page().keys())
def test_every_page_has_a_strict_policy_and_never_shows_the_password(typed_and_saved, path):
    response = typed_and_saved.get(path)

    assert strict_policy(response["Content-Security-Policy"]), response["Content-Security-Policy"]
    assert APP_PASSWORD not in content_of(response)
    assert APP_PASSWORD not in response.get("Location", "")


@pytest.mark.parametrize("path", ["/settings/", "/webmail/", "/webmail/message/58/"])
def test_the_mail_server_fault_pages_have_a_strict_policy_and_no_password(
    typed_and_saved, settings, path
):
    settings.WEBMAIL_IMAP_PORT = 1  # every new connection is refused: a 503 page
    pool.close_all()

    response = typed_and_saved.get(path)

    assert response.status_code in (200, 503)
    assert strict_policy(response["Content-Security-Policy"])
    assert APP_PASSWORD not in content_of(response)


def test_the_server_error_page_has_a_strict_policy(automatic_user, broken_folder_list):
    client = Client(raise_request_exception=False)
    client.force_login(automatic_user)

    response = client.get("/webmail/")

    assert response.status_code == 500
    assert strict_policy(response["Content-Security-Policy"])
    assert never_stored(response)
    assert APP_PASSWORD not in content_of(response)
