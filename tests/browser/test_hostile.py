"""Hostile mail opened in a real browser: nothing runs, nothing leaves, nothing covers the page."""

import contextlib

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.hostile import HOSTILE_HTML
from tests.conftest import USER_PASSWORD

ATTACKER = ("Attacker", "attacker@evil.example")


def test_hostile_mail_cannot_run_script_or_reach_other_hosts(page, automatic_user, mailbox, watch):
    first_uid = 61
    for number, (name, html) in enumerate(HOSTILE_HTML.items()):
        mailbox.receive(f"Hostile {number}: {name}", sender=ATTACKER, html=html)
    assert len(HOSTILE_HTML) >= 30
    sign_in(page, "alice", USER_PASSWORD)

    for offset, name in enumerate(HOSTILE_HTML):
        page.goto(f"/webmail/message/{first_uid + offset}/?folder=INBOX")
        expect(page.get_by_role("heading", name=f"Hostile {offset}: {name}")).to_be_visible()
        frame = page.frame_locator("iframe.message-body")
        expect(frame.locator("body")).to_be_attached()
        for target in ("#go", "body"):  # click what invites a click, then anywhere
            element = frame.locator(target).first
            if element.count():
                element.click(timeout=2000, force=True)
        page.wait_for_timeout(100)
        # The app's own page is untouched and still ours.
        assert page.url.endswith(f"/webmail/message/{first_uid + offset}/?folder=INBOX"), name
        expect(page.get_by_role("button", name="Mark unread")).to_be_visible()

    assert watch.dialogs == []
    assert watch.foreign() == []


def test_an_overlay_cannot_cover_the_apps_own_controls(page, automatic_user, mailbox):
    mailbox.receive("Overlay", sender=ATTACKER, html=HOSTILE_HTML["overlay"])
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/message/61/?folder=INBOX")
    page.frame_locator("iframe.message-body").locator("body").wait_for()

    # The topmost element at the Delete button is the button itself, not the mail's overlay.
    delete = page.get_by_role("button", name="Delete")
    box = delete.bounding_box()
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).textContent.trim()",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top == "Delete"
    body = page.frame_locator("iframe.message-body").locator("div").first
    assert "fixed" not in (body.get_attribute("style") or "")


def test_subjects_and_sender_names_with_markup_show_as_text(page, automatic_user, mailbox, watch):
    subject = "<img src=x onerror=alert('subject')> Invoice"
    sender = "<script>alert('name')</script> Billing"
    mailbox.receive(subject, sender=(sender, "billing@evil.example"), text="x")
    sign_in(page, "alice", USER_PASSWORD)

    page.goto("/webmail/")
    expect(page.get_by_role("link", name=subject)).to_be_visible()
    expect(page.get_by_text(sender)).to_be_visible()
    page.get_by_role("link", name=subject).click()
    expect(page.get_by_role("heading", name=subject)).to_be_visible()

    assert watch.dialogs == []


def test_the_watch_would_see_a_dialog_and_a_foreign_request(page, live_server, watch):
    """The checks above mean something: a dialog or a request elsewhere is noticed."""
    page.goto("/accounts/login/")
    page.evaluate("() => alert('seen')")
    with contextlib.suppress(PlaywrightError):  # no such host: the request is what counts
        page.goto("https://evil.example/probe")

    assert watch.dialogs == ["seen"]
    assert watch.foreign() == ["https://evil.example/probe"]
