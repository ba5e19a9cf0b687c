"""Random and hostile input through every form and malformed mail through the message view:
form errors or a safe fallback, never a server error."""

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import APP_PASSWORD
from webmail.models import SignInFailure

# Text a person, a paste or an attacker might send: anything, very long, control characters.
hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=5000),
    st.sampled_from(
        [
            "\x00",
            "a\r\nA1 LOGOUT",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "../../etc/passwd",
            "%00%0d%0a",
            "\u202e\ufeff\u200b",
            "😀" * 500,
            "\ud7ff\ue000",
        ]
    ),
)
examples = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def no_server_error(response):
    """An answer the user can act on. The server is a healthy Dovecot, so a 502, 503 or 504
    here is Webmail blaming the mail server for its own fault, and fails like a 500."""
    assert response.status_code < 500, response


@examples
@given(
    first_name=hostile_text,
    email=st.one_of(hostile_text, st.emails()),
    phone=hostile_text,
    password=hostile_text,
    clear=st.sampled_from(["", "on", "yes", "\x00"]),
    access=st.one_of(st.sampled_from(["manual", "automatic"]), hostile_text),
)
def test_the_settings_form_never_fails(
    user_client, user, first_name, email, phone, password, clear, access
):
    response = user_client.post(
        "/settings/edit/",
        {
            "first_name": first_name,
            "last_name": first_name,
            "email": email,
            "phone": phone,
            "email_password": password,
            "clear_email_password": clear,
            "webmail_access": access,
        },
    )
    no_server_error(response)
    assert response.status_code in (200, 302)
    if response.status_code == 200:  # the form again, with errors: the password never echoed
        field = re.search(
            r'<input type="password"[^>]*name="email_password"[^>]*>', response.content.decode()
        )
        assert "value=" not in field.group(0)


OFF_SITE = ["//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example"]


# Each wrong password waits out Dovecot's own delay for failures: fewer examples.
@settings(examples, max_examples=15)
@given(password=hostile_text, next_url=st.one_of(hostile_text, st.sampled_from(OFF_SITE)))
@example(password=APP_PASSWORD, next_url="//evil.example")
def test_the_webmail_sign_in_form_never_fails(
    user_client, mailbox, mail_client_address, password, next_url
):
    # Each example is a first try: not a locked mailbox, nor an address Dovecot slows down.
    SignInFailure.objects.all().delete()
    mail_client_address()

    response = user_client.post("/webmail/sign-in/", {"password": password, "next": next_url})

    no_server_error(response)
    assert response.status_code in (200, 302, 400)
    if response.status_code == 302:
        assert response["Location"].startswith("/")
        assert not response["Location"].startswith(("//", "/\\"))


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_signing_in_with_a_next_address_elsewhere_stays_on_the_site(user_client, mailbox, next_url):
    response = user_client.post("/webmail/sign-in/", {"password": APP_PASSWORD, "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == "/webmail/"
    assert user_client.get("/webmail/").status_code == 200  # signed in all the same


@examples
@given(
    folder=hostile_text,
    q=hostile_text,
    field=st.one_of(st.sampled_from(["sender", "subject", "text"]), hostile_text),
    page=st.one_of(st.integers(-5, 10**12).map(str), hostile_text),
)
def test_the_mailbox_query_never_fails(user_client, automatic_user, folder, q, field, page):
    response = user_client.get(
        "/webmail/", {"folder": folder, "q": q, "field": field, "page": page}
    )
    no_server_error(response)
    assert response.status_code in (200, 400, 404)


@examples
@given(
    action=st.one_of(
        st.sampled_from(["read", "unread", "flag", "unflag", "move", "delete"]), hostile_text
    ),
    uids=st.lists(st.one_of(st.integers(-10, 2**40).map(str), hostile_text), max_size=60),
    folder=st.one_of(st.just("INBOX"), hostile_text),
    target=hostile_text,
)
def test_the_action_form_never_fails(user_client, automatic_user, action, uids, folder, target):
    response = user_client.post(
        "/webmail/actions/", {"action": action, "uid": uids, "folder": folder, "target": target}
    )
    no_server_error(response)
    assert response.status_code in (200, 302, 400, 404)


header_text = st.one_of(
    st.text(max_size=80).map(lambda text: text.replace("\r", " ").replace("\n", " ")),
    st.sampled_from(
        [
            "=?utf-8?B?!!!notbase64?=",
            "=?unknown-charset?Q?x?=",
            "=?utf-8?Q?a=0D=0AInjected: yes?=",
            "\udcff",
            "x" * 2000,
        ]
    ),
)
charsets = st.sampled_from(["utf-8", "iso-8859-1", "nonsense", "utf-7", "", "x-\x00"])
encodings = st.sampled_from(["7bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"])


multipart_kinds = st.sampled_from(["mixed", "alternative", "related", "x"])
part_types = st.sampled_from(
    ["text/plain", "text/html", "image/png", "application/pdf", "message/rfc822", "bogus"]
)
dispositions = st.sampled_from(["attachment", "inline", "weird"])


@st.composite
def part_headers(draw, content_type):
    return [
        f'Content-Type: {content_type}; charset={draw(charsets)}; name="{draw(header_text)}"',
        f"Content-Transfer-Encoding: {draw(encodings)}",
        f'Content-Disposition: {draw(dispositions)}; filename="{draw(header_text)}"',
        f"Content-ID: <{draw(st.text(alphabet='abc@.', max_size=8))}>",
    ]


@st.composite
def raw_messages(draw):
    """Messages with broken headers, charsets, encodings and boundaries, then random bytes."""
    boundary = draw(st.text(alphabet="abc-_=", max_size=12))
    lines = [
        f"From: {draw(header_text)} <{draw(st.emails())}>",
        f"Subject: {draw(header_text)}",
        f"Date: {draw(header_text)}",
        "MIME-Version: 1.0",
    ]
    parts = draw(st.integers(0, 4))
    if parts:
        lines.append(f'Content-Type: multipart/{draw(multipart_kinds)}; boundary="{boundary}"')
        body = []
        for _ in range(parts):
            body += [f"--{boundary}", *draw(part_headers(draw(part_types)))]
            body += ["", draw(st.text(max_size=300))]
        if draw(st.booleans()):
            body.append(f"--{boundary}--")
    else:
        lines += draw(part_headers(f"text/{draw(st.sampled_from(['plain', 'html']))}"))
        body = [draw(st.text(max_size=500))]
    raw = "\r\n".join([*lines, "", *body]).encode("utf-8", "surrogateescape")
    return raw + draw(st.binary(max_size=200))


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=raw_messages())
def test_malformed_mail_never_breaks_the_message_view(user_client, automatic_user, mailbox, raw):
    mailbox.deliver(raw)
    uid = max(
        int(number)
        for number in re.findall(
            r"/webmail/message/(\d+)/", user_client.get("/webmail/").content.decode()
        )
    )

    page = user_client.get(f"/webmail/message/{uid}/")
    no_server_error(page)
    assert page.status_code == 200
    for url in set(
        re.findall(
            rf'(/webmail/message/{uid}/(?:body|source|part/[0-9.]+)/\?[^"]*)', page.content.decode()
        )
    ):
        response = user_client.get(url.replace("&amp;", "&"))
        no_server_error(response)
        if response.streaming:
            b"".join(response.streaming_content)
    assert user_client.get("/webmail/").status_code == 200
