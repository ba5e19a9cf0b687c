"""Keyboard shortcuts and new mail arriving in an open Webmail page, in a real Chromium."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import NOW, USER_PASSWORD


@pytest.fixture
def script_errors(page):
    """Errors thrown by the page's own scripts."""
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def inbox(page, automatic_user, settings, script_errors):
    settings.WEBMAIL_POLL_SECONDS = 1
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    return page


def current_subject(page) -> str:
    """The chosen row's subject, without the marks for screen readers (Unread:, Flagged:)."""
    return page.locator(".messages tr.current .col-subject a").evaluate(
        "link => [...link.childNodes].filter(node => node.nodeType === 3)"
        ".map(node => node.textContent).join('')"
    )


def test_j_k_o_and_u_walk_through_the_mail(inbox, shoot, script_errors):
    page = inbox
    page.keyboard.press("j")
    assert current_subject(page) == "Grüße aus Köln – Übersicht"
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert current_subject(page) == "Signed form attached"
    assert page.evaluate("document.activeElement.textContent").endswith("Signed form attached")
    shoot(page, "1-chosen")
    page.keyboard.press("o")
    expect(page.get_by_role("heading", name="Signed form attached")).to_be_visible()

    page.keyboard.press("j")  # older
    expect(page.get_by_role("heading", name="Newsletter with pictures")).to_be_visible()
    page.keyboard.press("k")  # newer
    expect(page.get_by_role("heading", name="Signed form attached")).to_be_visible()
    page.keyboard.press("u")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Grüße aus Köln – Übersicht")).to_be_visible()
    assert script_errors == []


def test_typing_in_the_search_field_is_not_a_shortcut(inbox):
    page = inbox
    page.keyboard.press("/")
    search = page.get_by_label("Search this folder")
    expect(search).to_be_focused()
    page.keyboard.type("jk#s?u")

    expect(search).to_have_value("jk#s?u")
    assert page.locator(".messages tr.current").count() == 0
    expect(page.locator("#shortcuts")).not_to_be_visible()
    assert page.url.endswith("/webmail/")


def test_s_flags_and_hash_deletes_with_the_buttons_rules(inbox, mailbox):
    page = inbox
    page.keyboard.press("j")  # Grüße aus Köln, flagged
    page.keyboard.press("s")
    expect(page.get_by_text("Removed the flag from 1 message.")).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("j")  # Signed form attached
    page.keyboard.press("s")
    expect(page.get_by_text("Flagged 1 message.")).to_be_visible()
    expect(page.locator(".messages tr.flagged")).to_have_text([re.compile("Signed form")])

    page.keyboard.press("j")
    page.keyboard.press("#")
    expect(page.get_by_text("Moved 1 message to Trash.")).to_be_visible()
    page.goto("/webmail/?folder=Trash")
    page.keyboard.press("j")
    page.keyboard.press("#")
    # In Trash deleting is for good, so it asks first, as the Delete button does.
    expect(page.get_by_role("heading", name="Delete 1 message for good?")).to_be_visible()


def test_s_and_hash_on_a_message_page_use_its_buttons(inbox):
    page = inbox
    page.get_by_role("link", name="Message 57").click()
    page.keyboard.press("s")
    expect(page.get_by_text("Flagged 1 message.")).to_be_visible()
    expect(page.get_by_role("button", name="Remove flag")).to_be_visible()
    page.keyboard.press("#")
    expect(page.get_by_text("Moved 1 message to Trash.")).to_be_visible()


def test_question_mark_shows_the_shortcuts(inbox, shoot):
    page = inbox
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Search this folder")
    shoot(page, "1-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()


def test_new_mail_appears_without_a_reload(inbox, mailbox, shoot, script_errors):
    page = inbox
    expect(page).to_have_title(re.compile(r"^\(10\) Inbox"))
    page.evaluate("window.stayed = true")  # gone if the page reloads
    mailbox.receive("Arrived while you looked", sender=("New Client", "new@example.org"), when=NOW)

    row = page.locator(".messages tbody tr").first
    expect(row).to_contain_text("Arrived while you looked", timeout=5_000)
    expect(row).to_contain_text("New Client")
    inbox_count = page.get_by_role("navigation", name="Folders").get_by_role("link", name="Inbox")
    expect(inbox_count).to_contain_text("11")
    expect(page).to_have_title(re.compile(r"^\(11\) Inbox"))
    assert page.evaluate("window.stayed") is True
    shoot(page, "1-arrived")
    row.get_by_role("link", name="Arrived while you looked").click()
    expect(page.get_by_role("heading", name="Arrived while you looked")).to_be_visible()
    assert script_errors == []


def test_a_selection_and_the_chosen_row_survive_new_mail(inbox, mailbox):
    page = inbox
    page.locator(".messages tr", has_text="Message 50").get_by_role("checkbox").check()
    page.keyboard.press("j")
    page.keyboard.press("j")  # Signed form attached
    mailbox.receive("Arrived", when=NOW)

    expect(page.locator(".messages tbody tr").first).to_contain_text("Arrived", timeout=5_000)
    expect(
        page.locator(".messages tr", has_text="Message 50").get_by_role("checkbox")
    ).to_be_checked()
    assert current_subject(page) == "Signed form attached"
    expect(page.get_by_role("link", name="Signed form attached")).to_be_focused()
    page.keyboard.press("j")
    assert current_subject(page) == "Newsletter with pictures"


def test_a_hidden_tab_does_not_poll(inbox, watch):
    page = inbox
    polls = lambda: len([url for url in watch.requests if "/webmail/news/" in url])  # noqa: E731
    page.wait_for_timeout(2_500)
    assert polls() >= 1, "a visible tab polls every interval"
    page.evaluate(
        """() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    )
    page.wait_for_timeout(300)  # a poll already under way may finish
    before = polls()
    page.wait_for_timeout(3_000)
    assert polls() == before

    page.evaluate(
        """() => {
        Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    )
    page.wait_for_timeout(500)
    assert polls() == before + 1, "back in view, it catches up at once"
