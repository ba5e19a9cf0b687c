"""The folder list and the message list: order, counts, pages, search."""

import re

import pytest

from tests.conftest import FLAVOURS, each_flavour
from webmail import imap


@pytest.fixture(params=list(FLAVOURS))
def dovecot(request):
    """Every test here runs on Dovecot as shipped and on one trimmed like Exchange."""
    return each_flavour(request)


def rows(page: str) -> list[str]:
    return re.findall(
        r'<a href="/webmail/message/\d+/\?folder=[^"]*">(?:<span[^>]*>[^<]*</span>)*([^<]*)</a>',
        page,
    )


def folder_names(page: str) -> list[str]:
    nav = re.search(r'<nav class="folders".*?</nav>', page, re.S).group(0)
    return [
        name.strip() for name in re.findall(r'<span class="folder-name[^"]*">([^<]*)</span>', nav)
    ]


def test_folders_come_inbox_drafts_sent_trash_then_the_rest(user_client, automatic_user, mailbox):
    page = user_client.get("/webmail/").content.decode()

    names = folder_names(page)
    drafts, sent, trash = (mailbox.folder(use) for use in ["drafts", "sent", "trash"])
    assert names[:4] == ["Inbox", drafts, sent, trash]
    assert set(names[4:]) >= {"Archive", mailbox.folder("junk"), "Kunden", "Müller"}


def test_folders_show_unread_counts(user_client, automatic_user):
    page = user_client.get("/webmail/").content.decode()

    nav = re.search(r'<nav class="folders".*?</nav>', page, re.S).group(0)
    inbox = re.search(r'<a href="/webmail/"[^>]*>.*?</a>', nav, re.S).group(0)
    assert '<span class="count">10<span class="visually-hidden"> unread</span>' in inbox


def test_a_non_ascii_folder_opens(user_client, automatic_user):
    response = user_client.get("/webmail/", {"folder": "Kunden/Müller"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Akte Müller" in page
    assert "Frau Müller" in page


def test_messages_come_newest_first_fifty_a_page(user_client, automatic_user):
    first = rows(user_client.get("/webmail/").content.decode())
    second = rows(user_client.get("/webmail/?page=2").content.decode())

    assert len(first) == 50
    assert first[0] == "Grüße aus Köln – Übersicht"
    assert first[1:3] == ["Signed form attached", "Newsletter with pictures"]
    assert first[-1] == "Message 11"
    assert second == [f"Message {number}" for number in range(10, 0, -1)]


def test_pages_link_to_each_other(user_client, automatic_user):
    first = user_client.get("/webmail/").content.decode()
    second = user_client.get("/webmail/?page=2").content.decode()

    assert "1–50 of 60" in first and 'href="/webmail/?page=2"' in first
    assert "51–60 of 60" in second and 'href="/webmail/"' in second


def test_a_page_past_the_end_shows_the_last_page(user_client, automatic_user):
    page = user_client.get("/webmail/?page=99").content.decode()
    assert "51–60 of 60" in page


def test_a_page_fetches_only_its_own_messages(user_client, automatic_user, monkeypatch):
    fetched = []
    real_page = imap.Mailbox.page

    def spy(self, folder, number):
        connection = self._client._imap  # imaplib's, which sends the commands
        real_fetch = connection.fetch

        def fetch(message_set, message_parts):
            fetched.append((message_set, message_parts))
            return real_fetch(message_set, message_parts)

        def general_fetch(*args, **kwargs):
            fetched.append("asked again through imapclient")  # our parser stepped aside

        connection.fetch = fetch
        self._client.fetch = general_fetch
        try:
            return real_page(self, folder, number)
        finally:
            del connection.fetch, self._client.fetch

    monkeypatch.setattr(imap.Mailbox, "page", spy)

    user_client.get("/webmail/?page=2")

    assert len(fetched) == 1
    message_set, items = fetched[0]
    assert sorted(int(number) for number in message_set.split(",")) == list(range(1, 11))
    assert "ENVELOPE" in items and "FLAGS" in items


def test_rows_show_sender_date_size_and_marks(user_client, automatic_user):
    page = user_client.get("/webmail/").content.decode()

    newest = re.search(r"<tr class=\"unread flagged\">.*?</tr>", page, re.S).group(0)
    assert "Sender 60" in newest
    assert "Grüße aus Köln – Übersicht" in newest
    assert 'datetime="2026-11-20T08:00:00+00:00"' in newest
    assert "bytes" in newest or "KB" in newest
    assert "Unread: " in newest and "Flagged: " in newest
    read = re.search(r'<tr class="">.*?Message 50<.*?</tr>', page, re.S)
    assert read is not None


def test_sent_shows_recipients(user_client, automatic_user, mailbox):
    from devtools.seed import message
    from tests.conftest import NOW

    mailbox.deliver(
        message(sender=("Me", mailbox.email), to="client@example.org", subject="Sent", when=NOW),
        folder=mailbox.folder("sent"),
        seen=True,
    )

    page = user_client.get("/webmail/", {"folder": mailbox.folder("sent")}).content.decode()

    assert ">To</th>" in page
    assert "client@example.org" in page


@pytest.mark.parametrize(
    ("field", "term", "expected"),
    [
        ("sender", "sender59@example.org", ["Signed form attached"]),
        ("subject", "Köln", ["Grüße aus Köln – Übersicht"]),
        ("text", "Body of message 42.", ["Message 42"]),
    ],
)
def test_search_by_sender_subject_or_text(user_client, automatic_user, field, term, expected):
    page = user_client.get("/webmail/", {"q": term, "field": field}).content.decode()

    assert rows(page) == expected
    assert "1 message in Inbox" in page


def test_search_results_come_newest_first_in_pages(user_client, automatic_user):
    page = user_client.get("/webmail/", {"q": "Message", "field": "subject"}).content.decode()

    found = rows(page)
    assert len(found) == 50
    assert found[0] == "Message 57"
    assert "57 messages in Inbox" in page


def test_a_search_term_with_cr_lf_is_refused(user_client, automatic_user, monkeypatch):
    sent = []
    monkeypatch.setattr(imap.Mailbox, "search", lambda *args: sent.append(args))

    response = user_client.get("/webmail/", {"q": "x\r\nA1 DELETE INBOX", "field": "text"})

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert sent == []


def test_the_imap_module_refuses_cr_lf_before_sending_anything(mailbox, imap_settings):
    from tests.conftest import APP_PASSWORD

    mail = imap.Mailbox(imap.Server.from_settings()).sign_in(mailbox.email, APP_PASSWORD)
    sent = mail.commands
    try:
        with pytest.raises(imap.UnsafeInput):
            mail.search("INBOX", "subject", "x\r\nA1 LOGOUT", 1)
        with pytest.raises(imap.UnsafeInput):
            mail.select("INBOX\r\nA1 LOGOUT")
        assert mail.commands == sent
    finally:
        mail.close()


def test_a_folder_name_with_control_characters_is_refused(user_client, automatic_user):
    response = user_client.get("/webmail/", {"folder": "INBOX\r\nA2 LOGOUT"})

    assert response.status_code == 400
    assert "control characters" in response.content.decode()


def test_a_missing_folder_says_so(user_client, automatic_user):
    response = user_client.get("/webmail/", {"folder": "No such folder"})

    assert response.status_code == 404
    assert "There is no folder called “No such folder”." in response.content.decode()


def test_an_empty_folder_says_so(user_client, automatic_user):
    page = user_client.get("/webmail/?folder=Archive").content.decode()
    assert "There are no messages in this folder." in page


@pytest.mark.parametrize("term", ["{5}", "(", '"', "\\", "*", "ALL", "ü{3}"])
def test_search_terms_that_look_like_imap_syntax_are_just_text(
    user_client, automatic_user, mailbox, term
):
    response = user_client.get("/webmail/", {"q": term, "field": "subject"})

    assert response.status_code == 200
    assert "No messages match your search." in response.content.decode()
    user_client.get("/webmail/")  # the connection is still in step
    assert mailbox.dovecot.log_file.read_text().count(f"Login: user=<{mailbox.email}>") == 1


def test_without_list_status_counts_are_read_once_and_kept_briefly(
    user_client, automatic_user, dovecot, imap_settings, monkeypatch
):
    imap_settings.WEBMAIL_IMAP_TIMEOUT = 30  # time enough for every count on a busy machine
    statuses = []
    real_status = imap.IMAPClient.folder_status

    def folder_status(self, folder, what=None):
        statuses.append(folder)
        return real_status(self, folder, what)

    monkeypatch.setattr(imap.IMAPClient, "folder_status", folder_status)

    first = user_client.get("/webmail/").content.decode()
    asked = len(statuses)
    second = user_client.get("/webmail/?page=2").content.decode()

    if dovecot.flavour == "dovecot":
        assert statuses == []  # LIST-STATUS gives every count with the list
    else:
        assert asked >= 6 and len(statuses) == asked  # the second page asked for none
    for page in (first, second):
        assert '<span class="count">10<span class="visually-hidden"> unread</span>' in page


def test_a_folder_read_on_this_connection_shows_its_new_count(user_client, automatic_user):
    user_client.get("/webmail/")
    for uid in (51, 52):
        user_client.get(f"/webmail/message/{uid}/", {"folder": "INBOX"})  # marks it read

    page = user_client.get("/webmail/").content.decode()

    assert '<span class="count">8<span class="visually-hidden"> unread</span>' in page


def test_the_page_shows_without_counts_when_there_is_no_time_for_them(
    user_client, automatic_user, monkeypatch
):
    monkeypatch.setattr("webmail.imap.mailbox.STATUS_SHARE_OF_TIMEOUT", 0)

    response = user_client.get("/webmail/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Grüße aus Köln" in page
    assert folder_names(page)[:1] == ["Inbox"]
