"""Hostile mail opened in a real browser: nothing runs, nothing leaves, nothing covers the page."""

import contextlib

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.hostile import CLICK_TEXT, HOSTILE_HTML, NEW_TAB_LINKS
from tests.conftest import USER_PASSWORD

ATTACKER = ("Attacker", "attacker@evil.example")


def test_hostile_mail_cannot_run_script_or_reach_other_hosts(
    page, context, automatic_user, mailbox, watch
):
    first_uid = 61
    for number, (name, html) in enumerate(HOSTILE_HTML.items()):
        mailbox.receive(f"Hostile {number}: {name}", sender=ATTACKER, html=html)
    assert len(HOSTILE_HTML) >= 30
    own_page_requests, popups, clicked = [], [], []
    page.on("request", lambda request: own_page_requests.append(request.url))
    context.on("page", lambda popup: popups.append(popup))
    sign_in(page, "alice", USER_PASSWORD)

    for offset, name in enumerate(HOSTILE_HTML):
        page.goto(f"/webmail/message/{first_uid + offset}/?folder=INBOX")
        expect(page.get_by_role("heading", name=f"Hostile {offset}: {name}")).to_be_visible()
        frame = page.frame_locator("iframe.message-body")
        expect(frame.locator("body")).to_be_attached()
        if name in CLICK_TEXT:  # click what invites a click, found by its visible text
            target = frame.get_by_text(CLICK_TEXT[name], exact=True)
            expect(target).to_have_count(1)
            if name in NEW_TAB_LINKS:
                with context.expect_page(timeout=5000):
                    target.click(timeout=5000)
            else:
                target.click(timeout=5000)
            clicked.append(name)
        frame.locator("body").click(timeout=5000, position={"x": 5, "y": 5})  # and anywhere
        page.wait_for_timeout(100)
        # The app's own page is untouched and still ours.
        assert page.url.endswith(f"/webmail/message/{first_uid + offset}/?folder=INBOX"), name
        expect(page.get_by_role("button", name="Mark unread")).to_be_visible()

    assert sorted(clicked) == sorted(CLICK_TEXT)
    assert watch.dialogs == []
    assert [url for url in own_page_requests if url in watch.foreign()] == []
    # The surviving link opened in a new tab that cannot reach back (rel=noopener), and
    # nothing else left the site.
    assert len(popups) == len(NEW_TAB_LINKS)
    assert [popup.evaluate("() => window.opener") for popup in popups] == [None] * len(popups)
    assert set(watch.foreign()) <= set(NEW_TAB_LINKS.values())


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
