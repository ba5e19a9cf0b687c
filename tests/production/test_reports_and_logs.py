"""Passwords, session ids and CSRF secrets stay out of error reports and out of every log,
with the real sensitive_variables and sensitive_post_parameters doing the hiding."""

import io
import logging
import sys

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter

from settings_app import services as settings_services
from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, save_password
from tests.production.conftest import Browser, imap_env, session_cookie
from tests.settings_app.test_edit import form_data
from webmail import imap, smtp
from webmail import services as webmail_services

WRONG_PASSWORD = "not-the-app-password-" + APP_PASSWORD[::-1]


@pytest.fixture
def broken_settings_page(settings, tmp_path):
    """A real template error on the Settings page."""
    (tmp_path / "settings_app").mkdir()
    (tmp_path / "settings_app" / "show.html").write_text("{{ user|no_such_filter }}")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]


def everything(message) -> str:
    return message.subject + message.body + "".join(content for content, _ in message.alternatives)


def test_an_emailed_error_report_hides_the_session_and_csrf_secrets(
    user, settings, broken_settings_page
):
    settings.ADMINS = ["ops@example.test"]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    client.get("/settings/edit/")  # sets the CSRF cookie
    session_id = client.cookies["sessionid"].value
    csrf_secret = client.cookies["csrftoken"].value

    response = client.get("/settings/", headers={"X-CSRFToken": csrf_secret})

    assert response.status_code == 500
    assert len(mail.outbox) == 1
    report = everything(mail.outbox[0])
    assert "no_such_filter" in report  # the report still explains the fault
    assert "sessionid" in report and "csrftoken" in report  # the cookies are named
    assert session_id not in report
    assert csrf_secret not in report


def test_a_mail_server_outage_is_logged_but_not_emailed_to_admins(user, mailbox, settings, caplog):
    settings.ADMINS = ["ops@example.test"]
    settings.WEBMAIL_IMAP_PORT = 1  # nothing listens: the mail server is down
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)
    client = Client(raise_request_exception=False)
    client.force_login(user)

    response = client.get("/webmail/")

    assert response.status_code == 503
    assert mail.outbox == []  # every page view during an outage would otherwise mail ADMINS
    assert any("/webmail/ 503" in line for line in caplog.messages)


def technical_report(request) -> str:
    """The HTML report Django would render (and e-mail with include_html) for the current
    exception."""
    return ExceptionReporter(request, *sys.exc_info()).get_traceback_html()


PASSWORDS = {"server down": APP_PASSWORD, "password refused": "refused-" + APP_PASSWORD}


@pytest.mark.parametrize(
    "fault, frames",
    [
        # Nothing listens: the connection fails before the password is sent.
        ("server down", ("mailbox_sign_in", "mailbox_lease", "_sign_in")),
        # The password reaches the server and is refused: every frame that held it.
        ("password refused", ("mailbox_sign_in", "mailbox_lease", "_sign_in", "sign_in")),
    ],
)
def test_a_failure_while_signing_in_to_the_mailbox_never_reports_the_password(
    user, mailbox, settings, fault, frames
):
    if fault == "server down":
        settings.WEBMAIL_IMAP_PORT = 1
    request = RequestFactory().post("/webmail/sign-in/")
    request.user = user
    request.session = SessionStore()
    try:
        # Not held in a variable here: this frame is in the report too.
        webmail_services.mailbox_sign_in(request, PASSWORDS[fault])
    except (imap.ServerUnreachable, imap.PasswordRejected):
        report = technical_report(request)
    else:
        pytest.fail("signing in worked")

    # The frames that held the password are in the report, with their variables.
    for frame in frames:
        assert f"in {frame}" in report or f"{frame}</code>" in report, frame
    assert "Local vars" in report
    assert PASSWORDS[fault] not in report


def test_a_password_refused_for_sending_is_not_in_the_report(mailbox, smtp_settings):
    """smtplib's login() frame holds the password; the report of the refusal drops it."""
    try:
        smtp.submit(
            smtp.SmtpServer.from_settings(),
            smtp.Login(username=mailbox.email, password=PASSWORDS["password refused"]),
            sender=mailbox.email,
            recipients=[mailbox.email],
            raw=b"Subject: hello\r\n\r\nhello\r\n",
        )
    except smtp.SendError:
        report = technical_report(RequestFactory().post("/webmail/compose/"))
    else:
        pytest.fail("a refused password sent the message")

    assert "in submit" in report or "submit</code>" in report
    assert PASSWORDS["password refused"] not in report


def test_a_failure_while_saving_settings_never_reports_the_password(
    user, settings, request_errors, monkeypatch
):
    """The fault comes from inside settings_update (the audit log cannot be written), so the
    frame holding `new_password` is in the report and sensitive_variables must hide it."""
    settings.ADMINS = ["ops@example.test"]

    def disk_full(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(settings_services, "audit_profile_change", disk_full)
    client = Client(raise_request_exception=False)
    client.force_login(user)

    response = client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    assert response.status_code == 500
    record = next(r for r in request_errors if r.exc_info)
    report = ExceptionReporter(record.request, *record.exc_info).get_traceback_html()
    assert "settings_update" in report and "new_password" in report
    assert APP_PASSWORD not in report
    assert APP_PASSWORD not in everything(mail.outbox[0])


@pytest.fixture
def every_log():
    """Everything any logger writes, at DEBUG, in the production format.

    Django's own loggers do not propagate to pytest's caplog, so a handler goes on the root
    and on every logger that does not propagate, and every logger is opened to DEBUG.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = [logger.level for logger in loggers]
    listening = [logger for logger in loggers if logger is loggers[0] or not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in listening:
        logger.addHandler(handler)
    yield stream
    for logger in listening:
        logger.removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_saving_settings_logs_nothing_of_the_password_in_any_logger(user_client, user, every_log):
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(user)

    refused = forged.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))
    saved = user_client.post("/settings/edit/", form_data(user, email_password=APP_PASSWORD))

    assert (refused.status_code, saved.status_code) == (403, 302)
    logged = every_log.getvalue()
    assert "POST /settings/edit/ 302" in logged  # the log was read
    assert "django.security.csrf" in logged  # and Django's own loggers with it
    assert APP_PASSWORD not in logged


def test_the_webmail_sign_in_form_logs_nothing_of_either_password_in_any_logger(
    user_client, user, mailbox, every_log
):
    rejected = user_client.post("/webmail/sign-in/", {"password": WRONG_PASSWORD})
    accepted = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})
    shown = user_client.get("/webmail/")

    assert rejected.status_code == 200 and "rejected" in rejected.content.decode()
    assert accepted.status_code == 302 and shown.status_code == 200
    logged = every_log.getvalue()
    assert "POST /webmail/sign-in/ 302" in logged
    assert "imapclient" in logged  # the IMAP conversation itself was logged at DEBUG
    assert APP_PASSWORD not in logged
    assert WRONG_PASSWORD not in logged


def test_gunicorn_output_holds_no_password_from_settings_or_webmail(serve, user, mailbox):
    app = serve(**imap_env(mailbox.dovecot), LOG_LEVEL="DEBUG")
    browser = Browser(app.url, session_cookie(user))

    token = browser.form_token("/settings/edit/")
    saved, _, _ = browser.request(
        "/settings/edit/",
        {**form_data(user, email_password=APP_PASSWORD), "csrfmiddlewaretoken": token},
    )
    token = browser.form_token("/webmail/")
    rejected, _, page = browser.request(
        "/webmail/sign-in/", {"password": WRONG_PASSWORD, "csrfmiddlewaretoken": token}
    )
    accepted, _, _ = browser.request(
        "/webmail/sign-in/", {"password": APP_PASSWORD, "csrfmiddlewaretoken": token}
    )
    app.stop()

    assert (saved, rejected, accepted) == (302, 200, 302)
    assert "rejected" in page
    log = app.log_file.read_text()
    assert "POST /settings/edit/ 302" in log and "POST /webmail/sign-in/ 302" in log
    assert APP_PASSWORD not in log
    assert WRONG_PASSWORD not in log
