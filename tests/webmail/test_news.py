"""New mail without a reload: the small endpoint the open page polls, and Newer/Older links."""

import re

from tests.conftest import NOW

NEWS = "/webmail/news/"


def shown_since(page: str) -> tuple[str, str]:
    """The poll address and digest the page hands to its script."""
    mail = re.search(r'<div class="mail"[^>]*>', page, re.S).group(0)
    news = re.search(r'data-news="([^"]*)"', mail).group(1).replace("&amp;", "&")
    return news, re.search(r'data-since="([^"]*)"', mail).group(1)


def poll(client, news: str, since: str):
    return client.get(f"{news}&since={since}")


def test_it_answers_no_content_when_nothing_changed(user_client, automatic_user):
    news, since = shown_since(user_client.get("/webmail/").content.decode())

    response = poll(user_client, news, since)

    assert response.status_code == 204
    assert response["Cache-Control"] == "private, no-store"
    # NOOP and one LIST-STATUS on the pooled connection: no sign-in, no fetch.
    assert response.wsgi_request.imap_commands == 2


def test_it_brings_a_new_message_and_the_unread_count(user_client, automatic_user, mailbox):
    news, since = shown_since(user_client.get("/webmail/").content.decode())
    mailbox.receive("Arrived while you looked", sender=("New Client", "new@example.org"), when=NOW)

    response = poll(user_client, news, since)

    found = response.json()
    assert response.status_code == 200
    assert found["unread"] == 11
    assert found["since"] != since
    assert 'class="count">11<' in found["folders"]
    assert found["rows"].index("Arrived while you looked") < found["rows"].index("Message 57")
    assert "New Client" in found["rows"]
    assert found["range"] == "1–50 of 61"
    # The new message's envelope is the only thing fetched beyond the poll itself.
    assert response.wsgi_request.imap_commands <= 4


def test_the_new_digest_means_nothing_changed_again(user_client, automatic_user, mailbox):
    news, since = shown_since(user_client.get("/webmail/").content.decode())
    mailbox.receive("Arrived", when=NOW)
    since = poll(user_client, news, since).json()["since"]

    assert poll(user_client, news, since).status_code == 204


def test_a_search_or_later_page_gets_counts_but_not_rows(user_client, automatic_user, mailbox):
    news, since = shown_since(user_client.get("/webmail/?q=Message&field=subject").content.decode())
    assert "rows" not in news
    mailbox.receive("Arrived", when=NOW)

    found = poll(user_client, news, since).json()

    assert found["unread"] == 11
    assert "rows" not in found


def test_the_message_page_polls_for_the_folder_list(user_client, automatic_user, mailbox):
    news, since = shown_since(user_client.get("/webmail/message/10/?folder=INBOX").content.decode())
    assert poll(user_client, news, since).status_code == 204
    mailbox.receive("Arrived", when=NOW)

    assert poll(user_client, news, since).json()["unread"] == 11


def test_it_refuses_a_folder_name_with_control_characters(user_client, automatic_user):
    response = user_client.get(NEWS, {"folder": "INBOX\r\nA1 LOGOUT"})

    assert response.status_code == 400


def test_older_and_newer_open_the_neighbouring_messages(user_client, automatic_user):
    page = user_client.get("/webmail/message/59/?folder=INBOX").content.decode()
    older = re.search(r'href="([^"]*)" rel="next"', page).group(1).replace("&amp;", "&")
    newer = re.search(r'href="([^"]*)" rel="prev"', page).group(1).replace("&amp;", "&")

    assert user_client.get(older)["Location"] == "/webmail/message/58/?folder=INBOX"
    assert user_client.get(newer)["Location"] == "/webmail/message/60/?folder=INBOX"


def test_the_newest_message_has_no_newer_one(user_client, automatic_user):
    response = user_client.get("/webmail/message/60/step/?folder=INBOX&to=newer", follow=True)

    assert response.redirect_chain[0][0] == "/webmail/message/60/?folder=INBOX"
    assert "This is the newest message in this folder." in response.content.decode()
    oldest = user_client.get("/webmail/message/1/step/?folder=INBOX&to=older", follow=True)
    assert "This is the oldest message in this folder." in oldest.content.decode()
