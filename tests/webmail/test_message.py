"""Reading one message: headers, text, sanitised HTML, images, attachments, the raw source."""

import re

import pytest

from devtools.seed import PIXEL_PNG


def get(client, uid, suffix="", folder="INBOX", **params):
    return client.get(f"/webmail/message/{uid}/{suffix}", {"folder": folder, **params})


def is_seen(client, uid) -> bool:
    page = client.get("/webmail/").content.decode()
    row = re.search(rf'<tr class="([^"]*)">(?:(?!</tr>).)*?/webmail/message/{uid}/\?', page, re.S)
    return "unread" not in row.group(1)


def test_it_shows_decoded_headers_and_the_text(user_client, automatic_user, mailbox):
    page = get(user_client, 60).content.decode()

    assert '<h1 id="message-subject">Grüße aus Köln – Übersicht</h1>' in page
    assert "Sender 60 &lt;sender60@example.org&gt;" in page
    assert mailbox.email in page
    assert "Body of message 60.\nSecond line." in page


def test_opening_marks_it_read(user_client, automatic_user):
    assert not is_seen(user_client, 55)

    get(user_client, 55)

    assert is_seen(user_client, 55)


def test_html_is_shown_in_a_sandboxed_frame(user_client, automatic_user):
    page = get(user_client, 58).content.decode()

    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'src="/webmail/message/58/body/?folder=INBOX"' in frame
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert "Show images" in page


def test_the_html_body_is_sanitised_with_a_strict_policy(user_client, automatic_user):
    response = get(user_client, 58, "body/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "img-src data:;" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    body = response.content.decode()
    assert "<b>reader</b>" in body
    assert "tracker.example" not in body


def test_remote_images_load_only_when_asked(user_client, automatic_user):
    response = get(user_client, 58, "body/", images="1")

    assert "img-src data: https: http:" in response["Content-Security-Policy"]
    assert 'src="https://tracker.example/pixel.gif"' in response.content.decode()


def test_the_show_images_link_keeps_the_message(user_client, automatic_user):
    page = get(user_client, 58, images="1").content.decode()
    assert 'src="/webmail/message/58/body/?folder=INBOX&amp;images=1"' in page


def test_inline_cid_images_come_from_the_message(user_client, automatic_user):
    body = get(user_client, 58, "body/").content.decode()
    assert re.search(r'<img src="data:image/png;base64,iVBORw0KGgo[^"]*" alt="logo">', body)


def test_the_plain_text_version_is_offered(user_client, automatic_user):
    page = get(user_client, 58, view="text").content.decode()
    assert "Body of message 58." in page
    assert "<iframe" not in page


def test_attachments_are_listed_and_downloaded_as_files(user_client, automatic_user):
    page = get(user_client, 59).content.decode()
    link = re.search(
        r'<a href="(/webmail/message/59/part/[0-9.]+/\?folder=INBOX)" download>signed form.pdf</a>',
        page,
    )
    assert link

    response = user_client.get(link.group(1))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="signed form.pdf"'
    assert b"".join(response.streaming_content) == b"%PDF-1.4 test\n"


def test_attachment_names_cannot_escape(user_client, automatic_user, mailbox):
    mailbox.deliver(
        b"From: evil@example.org\r\nSubject: Sneaky\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: text/html\r\n"
        b"Content-Disposition: attachment; "
        b'filename="=?utf-8?Q?=2E=2E/=2E=2E/etc/pass=0D=0Awd=22=3B.html?="\r\n'
        b"\r\n<script>alert(1)</script>\r\n--b--\r\n"
    )
    page = get(user_client, 61).content.decode()
    href = (
        re.search(r'href="(/webmail/message/61/part/[^"]+)"', page).group(1).replace("&amp;", "&")
    )

    response = user_client.get(href)

    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "/" not in disposition.split("filename", 1)[1]
    assert "\r" not in disposition and "\n" not in disposition
    assert response["Content-Type"] == "application/octet-stream"


def test_a_large_attachment_streams_intact(user_client, automatic_user, mailbox):
    payload = bytes(range(256)) * 12_000  # about 3 MB, several fetch chunks
    mailbox.receive(
        "Large file",
        sender=("Big", "big@example.org"),
        text="see attached",
        attachments=[("data.bin", payload, "application/octet-stream")],
    )
    href = (
        re.search(r'href="(/webmail/message/61/part/[^"]+)"', get(user_client, 61).content.decode())
        .group(1)
        .replace("&amp;", "&")
    )

    response = user_client.get(href)

    assert response.streaming
    assert b"".join(response.streaming_content) == payload


def test_a_missing_part_is_not_found(user_client, automatic_user):
    assert get(user_client, 59, "part/9/").status_code == 404


@pytest.mark.parametrize("part", ["1..2", "0", "1.a", "../1"])
def test_a_malformed_part_is_refused(user_client, automatic_user, part):
    assert get(user_client, 59, f"part/{part}/").status_code in (400, 404)


def test_the_raw_source_is_available(user_client, automatic_user):
    response = get(user_client, 60, "source/")

    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "sandbox" in response["Content-Security-Policy"]
    source = b"".join(response.streaming_content)
    assert b"Subject: =?utf-8?" in source
    assert b"Body of message 60." in source


def test_a_missing_message_says_so(user_client, automatic_user):
    response = get(user_client, 999)
    assert response.status_code == 404
    assert "This message is no longer in this folder." in response.content.decode()


def test_a_broken_message_still_shows_what_it_can(user_client, automatic_user, mailbox):
    broken = (
        b"From: =?x-unknown?Q?Broken=20Sender?= <broken@example.org>\r\n"
        b"Subject: =?utf-8?B?not base64!!?=\r\n"
        b"Date: not a date\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="never-closed"\r\n'
        b"\r\n--never-closed\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"SGVsbG8g!!!d29ybGQ=\r\n"
        b"--never-closed\r\n"
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<p>=E9t=C3=A9 =ZZ</p>"
    )
    mailbox.deliver(broken)

    page_response = user_client.get("/webmail/")
    response = get(user_client, 61)
    body = get(user_client, 61, "body/")
    source = get(user_client, 61, "source/")

    assert page_response.status_code == 200
    assert response.status_code == 200
    assert "broken@example.org" in response.content.decode()
    assert 'href="/webmail/message/61/source/?folder=INBOX"' in response.content.decode()
    assert body.status_code == 200
    assert b"never-closed" in b"".join(source.streaming_content)


def test_a_very_long_text_is_cut_with_a_note(user_client, automatic_user, mailbox, settings):
    settings.WEBMAIL_TEXT_LIMIT = 10_000
    mailbox.receive("Long", sender=("Long", "long@example.org"), text="word " * 20_000)

    page = get(user_client, 61).content.decode()

    assert "only its beginning is shown" in page
    assert page.count("word ") < 3_000


def test_subjects_and_names_with_markup_show_as_text(user_client, automatic_user, mailbox):
    mailbox.receive(
        "<script>alert('subject')</script>",
        sender=("<img src=x onerror=alert(1)>", "markup@example.org"),
        text="<b>not bold</b>",
    )

    listing = user_client.get("/webmail/").content.decode()
    page = get(user_client, 61).content.decode()

    for html in (listing, page):
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        # The list is rendered by Jinja2, which writes the apostrophe as &#39;.
        shown = html.replace("&#39;", "&#x27;")
        assert "&lt;script&gt;alert(&#x27;subject&#x27;)&lt;/script&gt;" in shown
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page


def test_an_inline_image_repeated_many_times_stays_within_the_budget(
    user_client, automatic_user, mailbox, settings
):
    settings.WEBMAIL_INLINE_IMAGES_LIMIT = 50_000
    picture = PIXEL_PNG + b"\0" * 20_000  # about 27 KB once in base64
    mailbox.receive(
        "Many logos",
        html='<img src="cid:logo@x">' * 5_000,
        inline_images={"logo@x": picture},
    )

    body = get(user_client, 61, "body/").content.decode()

    # As many copies as fit in the budget (one of about 27 KB in 50 KB), then none.
    assert body.count("data:image/png;base64,") == 1
    assert len(body) < 200_000


def test_addresses_in_a_plain_text_message_become_safe_links(user_client, automatic_user, mailbox):
    mailbox.receive(
        "Links", text="See www.example.org/report or https://example.net/a, not javascript:x()."
    )

    page = get(user_client, 61).content.decode()

    assert '<a href="https://www.example.org/report" rel="nofollow">' in page
    assert '<a href="https://example.net/a" rel="nofollow">' in page
    assert 'href="javascript' not in page
