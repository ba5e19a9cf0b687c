"""Access control for every URL: sign-in, ownership, a staff-only admin, POST-only changes."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls import path as url_path
from django.urls.resolvers import RoutePattern

from devtools.maildir import make_folder
from tests.conftest import make_user, user_with_mailbox

# Every named URL outside the admin, with an example address and who may use it how.
PUBLIC = {
    "login": "/accounts/login/",
    "help_email_password": "/help/email-password/",
    "healthz": "/healthz",
    "livez": "/livez",
}
SIGNED_IN_PAGES = {
    "home": "/",
    "settings_app:show": "/settings/",
    "settings_app:edit": "/settings/edit/",
    "webmail:open": "/webmail/",
    "webmail:sign_in": "/webmail/sign-in/",
    "webmail:message": "/webmail/message/1/",
    "webmail:body": "/webmail/message/1/body/",
    "webmail:source": "/webmail/message/1/source/",
    "webmail:attachment": "/webmail/message/1/part/2/",
    "settings_app:microsoft_callback": "/settings/microsoft/callback/",
    "webmail:news": "/webmail/news/",
    "webmail:step": "/webmail/message/1/step/",
    # Writing mail (the compose form also takes its POST, with a CSRF token)
    "webmail:compose": "/webmail/compose/",
    "webmail:reply": "/webmail/message/1/reply/",
    "webmail:reply_all": "/webmail/message/1/reply-all/",
    "webmail:forward": "/webmail/message/1/forward/",
}
POST_ONLY = {
    "logout": "/accounts/logout/",
    "webmail:act": "/webmail/actions/",
    "webmail:sign_out": "/webmail/sign-out/",
    "settings_app:microsoft_connect": "/settings/microsoft/connect/",
    "settings_app:microsoft_disconnect": "/settings/microsoft/disconnect/",
}


def named_urls(patterns=None, namespace=""):
    """The name of every URL outside the admin; an unnamed one as "(unnamed) its-pattern",
    which no table lists, so it cannot slip past unclassified."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_urls(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            yield namespace + pattern.name if pattern.name else f"(unnamed) {pattern.pattern}"


def test_every_url_is_classified():
    assert set(named_urls()) == set(PUBLIC) | set(SIGNED_IN_PAGES) | set(POST_ONLY)


def test_an_unnamed_url_is_not_classified():
    unnamed = [URLResolver(RoutePattern("extra/"), [url_path("hidden/", lambda request: None)])]

    assert list(named_urls(unnamed)) == ["(unnamed) hidden/"]


@pytest.mark.parametrize("path", list(SIGNED_IN_PAGES.values()) + list(POST_ONLY.values())[1:])
@pytest.mark.parametrize("method", ["get", "post"])
def test_signed_out_users_are_sent_to_sign_in(client, db, path, method):
    response = getattr(client, method)(path)
    if response.status_code == 405:
        return  # the method itself is refused before anything else
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", PUBLIC.values())
def test_public_pages_need_no_sign_in(client, db, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", POST_ONLY.values())
def test_changes_by_get_answer_405(user_client, path):
    assert user_client.get(path).status_code == 405


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/auth/user/", "/admin/settings_app/auditevent/"]
)
def test_non_staff_cannot_use_the_admin(user_client, path):
    response = user_client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_permissions_cannot_see_users(client, django_user_model):
    staff = make_user(django_user_model, "clerk", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/auth/user/").status_code == 403


def test_one_user_never_reaches_anothers_mail(dovecot, imap_settings, django_user_model):
    """The same addresses, used by two users, always show the signed-in user's own mailbox,
    even right after the other user opened them."""
    clients = {}
    for name in ("erin", "frank"):
        owner, mailbox = user_with_mailbox(django_user_model, dovecot, name)
        make_folder(mailbox.maildir, f"Private {name}")
        mailbox.receive(
            f"Secret of {name}",
            text=f"Body secret of {name}",
            html=f"<p>HTML secret of {name}</p>",
            attachments=[(f"{name}.txt", f"Attachment secret of {name}".encode(), "text/plain")],
        )
        clients[name] = Client()
        clients[name].force_login(owner)

    paths = [
        "/webmail/?folder=Private erin",
        "/webmail/message/1/",
        "/webmail/message/1/?view=text",
        "/webmail/message/1/body/",
        "/webmail/message/1/source/",
        "/settings/",
        "/settings/edit/",
    ]
    page = clients["erin"].get("/webmail/message/1/").content.decode()
    paths += [
        p.replace("&amp;", "&") for p in re.findall(r'href="(/webmail/message/1/part/[^"]+)"', page)
    ]
    assert len(paths) == 8  # the attachment's link was found

    def shown(client, path):
        response = client.get(path)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, content.decode(errors="replace").lower()

    # Erin first, so her signed-in connections are waiting in the pool when Frank comes.
    for path in paths:
        status, content = shown(clients["erin"], path)
        assert status == 200, path
        if "/webmail/message/" in path:
            assert "secret of erin" in content, path
    for path in paths:
        status, content = shown(clients["frank"], path)
        assert "secret of erin" not in content, path
    assert shown(clients["frank"], "/webmail/?folder=Private erin")[0] == 404
