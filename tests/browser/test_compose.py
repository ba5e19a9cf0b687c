"""Writing mail in a real browser: compose with an attachment, send, reply."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import USER_PASSWORD, user_with_mailbox
from tests.webmail.sending import arrived


def folder_link(page, name):
    return page.get_by_role("navigation", name="Folders").get_by_role(
        "link", name=re.compile(f"^{name}")
    )


def test_a_user_sends_with_an_attachment_and_the_recipient_replies(
    browser, live_server, page, automatic_user, mailbox, django_user_model, dovecot, postfix,
    smtp_settings, shoot, tmp_path,
):  # fmt: skip
    bob, bob_mailbox = user_with_mailbox(django_user_model, dovecot, "bob")
    postfix.sync_mailboxes()
    report = tmp_path / "Jahresbericht 2026.pdf"
    report.write_bytes(b"%PDF-1.4 annual report\n")

    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/")
    page.get_by_role("link", name="Write").click()
    page.get_by_label("To", exact=True).fill(f"Bob Example <{bob.email}>")
    page.get_by_label("Subject").fill("Jahresbericht – bitte prüfen")
    page.get_by_label("Message").fill("Hello Bob,\nthe report is attached.\n")
    page.get_by_label("Attach files").set_input_files(str(report))
    shoot(page, "1-compose")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Sent to 1 recipient.")).to_be_visible()
    folder_link(page, "Sent").click()
    expect(page.get_by_role("link", name="Jahresbericht – bitte prüfen")).to_be_visible()
    shoot(page, "2-in-sent")

    [received] = arrived(bob_mailbox.maildir)
    bob_context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    bob_page = bob_context.new_page()
    bob_page.set_default_timeout(15_000)
    sign_in(bob_page, "bob", USER_PASSWORD)
    bob_page.goto("/webmail/")
    # By keyboard: a click at the middle of this two-line link lands on the cell around it.
    bob_page.get_by_role("link", name="Jahresbericht – bitte prüfen").press("Enter")
    expect(bob_page.get_by_role("link", name="Jahresbericht 2026.pdf")).to_be_visible()
    bob_page.get_by_role("link", name="Reply", exact=True).click()
    expect(bob_page.get_by_label("Subject")).to_have_value("Re: Jahresbericht – bitte prüfen")
    bob_page.get_by_label("Message").press("Control+Home")
    bob_page.get_by_label("Message").type("Looks good, thanks.")
    shoot(bob_page, "3-reply")
    bob_page.get_by_role("button", name="Send").click()
    expect(bob_page.get_by_text("Sent to 1 recipient.")).to_be_visible()
    bob_context.close()

    replies = [m for m in arrived(mailbox.maildir, count=62) if m["In-Reply-To"]]
    assert [r["In-Reply-To"] for r in replies] == [received["Message-ID"]]
    page.goto("/webmail/")
    expect(page.get_by_role("link", name="Re: Jahresbericht – bitte prüfen")).to_be_visible()
    shoot(page, "4-reply-arrived")
