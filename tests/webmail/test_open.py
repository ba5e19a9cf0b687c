"""Opening Webmail: automatic sign-in, the manual form, and what a rejected password says."""

import re
import threading
import time

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from settings_app.models import Profile
from tests.conftest import APP_PASSWORD, USER_PASSWORD, make_user, save_password, user_with_mailbox
from webmail.models import SignInFailure, SignInLimited


def test_automatic_opens_the_inbox_without_a_prompt(user_client, automatic_user, mailbox):
    response = user_client.get("/webmail/")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="password"' not in page
    assert "<h1" in page and "Inbox" in page
    assert "Grüße aus Köln – Übersicht" in page
    assert "Message 11" in page
    assert "Message 10<" not in page  # 60 messages: the first page is 60 down to 11


def test_manual_asks_for_the_password_showing_the_address(user_client, user, mailbox):
    save_password(user)  # saved, but Manual

    response = user_client.get("/webmail/")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="password"' in page
    assert mailbox.email in page
    form = re.search(r'<form[^>]+action="/webmail/sign-in/".*?</form>', page, re.S).group(0)
    visible = re.findall(r'<input (?![^>]*type="hidden")[^>]*name="([^"]+)"', form)
    assert visible == ["password"]


def test_without_a_saved_password_it_asks(user_client, user, mailbox):
    page = user_client.get("/webmail/").content.decode()
    assert 'name="password"' in page


def test_manual_sign_in_opens_the_inbox(user_client, user, mailbox):
    response = user_client.post(
        "/webmail/sign-in/", {"password": APP_PASSWORD, "next": "/webmail/"}, follow=True
    )

    assert response.redirect_chain == [("/webmail/", 302)], response.content.decode()[-3000:]
    assert "Grüße aus Köln – Übersicht" in response.content.decode()


def test_the_manual_password_lasts_for_the_session(user_client, user, mailbox):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    page = user_client.get("/webmail/?folder=Archive").content.decode()

    assert 'name="password"' not in page
    assert "There are no messages in this folder." in page


def test_the_manual_password_is_never_saved_to_settings(user_client, user, mailbox):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert Profile.objects.get(user=user).email_password_token == ""


def test_the_manual_password_is_encrypted_in_the_session_store(user_client, user, mailbox):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    sessions = list(Session.objects.all())
    assert sessions
    for session in sessions:
        assert APP_PASSWORD not in session.session_data
        decoded = session.get_decoded()
        assert APP_PASSWORD not in repr(decoded)
        assert decoded["webmail_password"].startswith("gAAAAA")


def test_leaving_webmail_forgets_the_password(user_client, user, mailbox):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    user_client.post("/webmail/sign-out/")

    assert 'name="password"' in user_client.get("/webmail/").content.decode()
    for session in Session.objects.all():
        assert "webmail_password" not in session.get_decoded()


def test_signing_out_of_client_manager_forgets_the_password(user_client, user, mailbox):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    user_client.post("/accounts/logout/")

    assert Session.objects.count() == 0


def test_a_rejected_password_explains_app_passwords(user_client, user, mailbox):
    response = user_client.post("/webmail/sign-in/", {"password": "my-normal-password"})

    page = response.content.decode()
    assert "The mail server rejected the password" in page
    assert "multi-factor authentication" in page
    assert "app password" in page
    assert 'href="/help/email-password/"' in page
    assert 'href="/settings/edit/"' in page
    assert "my-normal-password" not in page


def test_a_rejection_by_microsoft_also_mentions_basic_sign_in(
    user_client, user, mailbox, settings, monkeypatch
):
    from webmail import imap

    monkeypatch.setattr(imap.Server, "is_microsoft", property(lambda self: True))

    page = user_client.post("/webmail/sign-in/", {"password": "wrong"}).content.decode()

    assert "turned off password (“basic”) sign-in for IMAP" in page
    assert "ask your IT administrator" in page


def test_a_rejection_elsewhere_does_not_blame_microsoft(user_client, user, mailbox):
    page = user_client.post("/webmail/sign-in/", {"password": "wrong"}).content.decode()
    assert "basic" not in page


def test_a_rejected_saved_password_is_recorded_and_the_form_offered(
    user_client, user, mailbox, settings
):
    save_password(user, password="an-old-app-password", access=Profile.WebmailAccess.AUTOMATIC)

    response = user_client.get("/webmail/")

    page = response.content.decode()
    assert "The mail server rejected your saved email password" in page
    assert 'name="password"' in page
    profile = Profile.objects.get(user=user)
    assert profile.email_password_rejected_at is not None
    settings_page = user_client.get("/settings/").content.decode()
    assert "Your saved email password was rejected" in settings_page


def test_a_rejected_saved_password_is_not_tried_again(user_client, user, mailbox):
    save_password(user, password="an-old-app-password", access=Profile.WebmailAccess.AUTOMATIC)
    user_client.get("/webmail/")

    page = user_client.get("/webmail/").content.decode()

    assert SignInFailure.objects.filter(mailbox=mailbox.email).count() == 1
    assert "Your saved email password was rejected by the mail server on" in page


def test_a_later_successful_sign_in_clears_the_notice(user_client, user, mailbox):
    save_password(user, password="an-old-app-password", access=Profile.WebmailAccess.AUTOMATIC)
    user_client.get("/webmail/")

    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert Profile.objects.get(user=user).email_password_rejected_at is None
    assert "was rejected" not in user_client.get("/settings/").content.decode()


def test_saving_a_new_password_clears_the_notice(user_client, user, mailbox):
    save_password(user, password="an-old-app-password", access=Profile.WebmailAccess.AUTOMATIC)
    user_client.get("/webmail/")

    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)

    page = user_client.get("/webmail/").content.decode()
    assert 'name="password"' not in page
    assert "Grüße aus Köln" in page


def test_repeated_failures_are_throttled(user_client, user, mailbox, settings):
    for _ in range(settings.WEBMAIL_SIGN_IN_ATTEMPTS):
        user_client.post("/webmail/sign-in/", {"password": "wrong"})

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert response.status_code == 429
    assert "Too many passwords were rejected" in response.content.decode()
    assert "15 minutes" in response.content.decode()


def test_saving_guesses_in_settings_is_throttled_too(user_client, user, mailbox, settings):
    # Different guesses from one address: Dovecot answers the last ones only after its longest
    # delay (15 s, then 2 s), and they must still count as rejected.
    for number in range(settings.WEBMAIL_SIGN_IN_ATTEMPTS):
        save_password(user, password=f"guess-{number}", access=Profile.WebmailAccess.AUTOMATIC)
        user_client.get("/webmail/")
    save_password(user, access=Profile.WebmailAccess.AUTOMATIC)  # even the right one waits

    response = user_client.get("/webmail/")

    assert response.status_code == 429
    assert "Too many passwords were rejected" in response.content.decode()
    assert mailbox.dovecot.log_file.read_text().count(f"user=<{mailbox.email}>") == 5


def guesses_by(django_user_model, name, address, count):
    """Attempts a colleague sends at `address` (the model's way in: the app gives each user
    their own address, but the limit must not rely on that)."""
    colleague = make_user(django_user_model, name)
    for _ in range(count):
        SignInFailure.attempt(address, colleague)


def test_a_colleague_cannot_use_up_the_owners_allowance(
    user_client, user, mailbox, settings, django_user_model
):
    guesses_by(
        django_user_model, "mallory", mailbox.email.upper(), settings.WEBMAIL_SIGN_IN_ATTEMPTS
    )
    mallory = django_user_model.objects.get(username="mallory")

    with pytest.raises(SignInLimited):
        SignInFailure.attempt(mailbox.email, mallory)
    assert user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD}).status_code == 302


def test_a_mailbox_closes_to_everyone_after_twice_the_limit_from_several_users(
    user_client, user, mailbox, settings, django_user_model
):
    for name in ("mallory", "trudy"):
        guesses_by(django_user_model, name, mailbox.email, settings.WEBMAIL_SIGN_IN_ATTEMPTS)

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert response.status_code == 429
    assert f"user=<{mailbox.email}>" not in mailbox.dovecot.log_file.read_text()


def test_case_variants_of_an_address_count_together(user_client, user, mailbox, settings):
    for number in range(settings.WEBMAIL_SIGN_IN_ATTEMPTS):
        user.email = mailbox.email.upper() if number % 2 else mailbox.email.title()
        user.save()
        user_client.post("/webmail/sign-in/", {"password": "guess"})
    user.email = mailbox.email
    user.save()

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert response.status_code == 429


def test_parallel_typed_passwords_only_try_the_limits_worth(
    transactional_db, dovecot, imap_settings, django_user_model, settings
):
    # As in production: the attempts past the connection budget wait for a connection longer
    # than Dovecot takes to reject the ones under way (up to 6 s, as it delays them in turn).
    settings.WEBMAIL_IMAP_TIMEOUT = 15
    user, mailbox = user_with_mailbox(django_user_model, dovecot, "ivan")
    barrier = threading.Barrier(12)
    statuses = []

    def guess(number):
        client = Client()
        client.force_login(user)
        barrier.wait()
        response = client.post("/webmail/sign-in/", {"password": f"guess-{number}"})
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    tried = dovecot.log_file.read_text().count(f"user=<{mailbox.email}>")
    assert tried == settings.WEBMAIL_SIGN_IN_ATTEMPTS
    assert sorted(statuses) == [200] * tried + [429] * (12 - tried)


def test_the_throttle_lifts_after_the_window(user_client, user, mailbox, settings):
    for _ in range(settings.WEBMAIL_SIGN_IN_ATTEMPTS):
        user_client.post("/webmail/sign-in/", {"password": "wrong"})
    SignInFailure.objects.update(
        failed_at=SignInFailure.objects.first().failed_at.replace(year=2000)
    )

    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})

    assert response.status_code == 302


def test_a_user_without_an_email_address_is_sent_to_settings(user_client, user, imap_settings):
    user.email = ""
    user.save()

    page = user_client.get("/webmail/").content.decode()

    assert "Add your email address in Settings" in page
    assert 'name="password"' not in page


def test_the_sign_in_form_refuses_control_characters(user_client, user, mailbox):
    response = user_client.post("/webmail/sign-in/", {"password": "abc\r\na LOGOUT"})

    assert "cannot contain control characters" in response.content.decode()
    assert SignInFailure.objects.count() == 0


def test_a_typed_password_is_refused_once_it_is_too_old(user_client, user, mailbox, settings):
    user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD})
    settings.SESSION_COOKIE_AGE = 1
    time.sleep(2.1)  # Fernet keeps whole seconds

    page = user_client.get("/webmail/").content.decode()

    assert 'name="password"' in page


def test_sessions_end_with_the_browser(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": USER_PASSWORD})
    assert response.cookies["sessionid"]["expires"] == ""  # no date: a browser-session cookie
