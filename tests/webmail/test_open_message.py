"""Opening a message is one exchange with the server: the body frame reuses what its page read."""

import re

import pytest

from devtools.seed import PIXEL_PNG
from tests.conftest import APP_PASSWORD
from webmail import imap


@pytest.fixture
def html_uid(mailbox) -> int:
    """An unread HTML message without inline images, the newest in the Inbox (UID 61)."""
    mailbox.receive("Quarterly letter", html="<p>Dear <b>client</b>, the figures.</p>")
    return 61


def open_message(client, uid: int) -> tuple[str, str]:
    page = client.get(f"/webmail/message/{uid}/", {"folder": "INBOX"})
    body = client.get(f"/webmail/message/{uid}/body/", {"folder": "INBOX"})
    assert page.status_code == 200 and body.status_code == 200
    return page.content.decode(), body.content.decode()


def test_it_shows_the_body_frame_after_its_page_without_asking_the_server(
    user_client, automatic_user, html_uid, sent
):
    user_client.get("/webmail/")
    user_client.get(f"/webmail/message/{html_uid}/", {"folder": "INBOX"})
    sent.clear()

    body = user_client.get(f"/webmail/message/{html_uid}/body/", {"folder": "INBOX"})

    assert sent == []
    assert "Dear <b>client</b>, the figures." in body.content.decode()
    assert "default-src 'none'" in body["Content-Security-Policy"]


def test_it_opens_an_unread_message_in_three_commands_and_marks_it_read_once(
    user_client, automatic_user, html_uid, sent
):
    user_client.get("/webmail/")
    sent.clear()

    open_message(user_client, html_uid)

    assert len(sent) <= 3, sent
    assert not any("STORE" in command for command in sent), sent
    assert not any(command.startswith("NOOP") for command in sent), sent
    other = imap.Mailbox(imap.Server.from_settings()).sign_in(automatic_user.email, APP_PASSWORD)
    with other.deadline():
        assert other.page("INBOX", 1).messages[0].seen
    other.close()


def test_the_body_frame_reads_the_message_itself_once_the_kept_html_expired(
    user_client, automatic_user, html_uid, sent, monkeypatch
):
    monkeypatch.setattr("webmail.imap.mailbox.BODY_KEEP_SECONDS", 0.0)
    user_client.get(f"/webmail/message/{html_uid}/", {"folder": "INBOX"})
    sent.clear()

    body = user_client.get(f"/webmail/message/{html_uid}/body/", {"folder": "INBOX"})

    assert any("FETCH" in command for command in sent)
    assert "Dear <b>client</b>, the figures." in body.content.decode()


def test_the_html_kept_for_the_body_frame_counts_in_the_pool_budget(
    automatic_user, mailbox, html_uid
):
    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    with mail.deadline():
        before = mail.cache_bytes()
        mail.message("INBOX", html_uid, text_limit=1000, html_limit=100_000)
        after = mail.cache_bytes()
    mail.close()

    assert after - before >= len("<p>Dear <b>client</b>, the figures.</p>")


def test_a_signature_with_several_logos_costs_the_body_frame_one_command(
    user_client, automatic_user, mailbox, sent
):
    logos = {f"logo{n}@practice.example": PIXEL_PNG for n in range(3)}
    html = "<p>Kind regards</p>" + "".join(
        f'<img src="cid:{cid}" alt="l{n}">' for n, cid in enumerate(logos)
    )
    mailbox.receive("Signed letter", html=html, inline_images=logos)
    user_client.get("/webmail/message/61/", {"folder": "INBOX"})
    sent.clear()

    body = user_client.get("/webmail/message/61/body/", {"folder": "INBOX"}).content.decode()

    assert len(sent) == 1, sent  # one FETCH for every image, not one each
    for n in range(3):
        assert re.search(rf'<img src="data:image/png;base64,iVBORw0KGgo[^"]*" alt="l{n}">', body)


def test_a_message_with_hundreds_of_images_shows_the_first_hundred_in_one_command(
    user_client, automatic_user, mailbox, sent
):
    pictures = {f"p{n:03d}@bulk.example": PIXEL_PNG for n in range(150)}
    mailbox.receive(
        "Picture book",
        html="".join(f'<img src="cid:{cid}">' for cid in pictures),
        inline_images=pictures,
    )
    user_client.get("/webmail/message/61/", {"folder": "INBOX"})
    sent.clear()

    response = user_client.get("/webmail/message/61/body/", {"folder": "INBOX"})

    assert response.status_code == 200
    assert len(sent) == 1, sent
    assert response.content.decode().count("data:image/png;base64,") == 100
