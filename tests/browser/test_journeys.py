"""The staff journey in a real browser, one test per journey, with screenshots of each step."""

import re

from playwright.sync_api import expect

from settings_app.models import Profile
from tests.browser.conftest import sign_in
from tests.conftest import APP_PASSWORD, USER_PASSWORD, save_password


def nav(page, name):
    """A link in the header's main navigation."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def test_an_admin_creates_a_staff_user(page, admin_user, shoot, django_user_model):
    sign_in(page, "admin", USER_PASSWORD)
    page.goto("/admin/")
    shoot(page, "1-admin-home")
    page.get_by_role("link", name="Users").first.click()
    page.get_by_role("link", name=re.compile("Add user")).click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password:", exact=True).fill("Carol-long-passphrase-7")
    page.get_by_label("Password confirmation").fill("Carol-long-passphrase-7")
    shoot(page, "2-add-user")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    page.get_by_label("Email address").fill("carol@practice.example")
    page.get_by_label("Staff status").check()
    shoot(page, "3-staff-user")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("was changed successfully")).to_be_visible()
    shoot(page, "4-saved")
    carol = django_user_model.objects.get(username="carol")
    assert carol.is_staff and carol.email == "carol@practice.example"


def test_a_user_saves_an_app_password_and_automatic_access(page, user, mailbox, shoot, watch):
    sign_in(page, "alice", USER_PASSWORD)
    nav(page, "Settings").click()
    shoot(page, "1-settings")
    edit = page.get_by_role("link", name="Edit", exact=True)
    box = edit.bounding_box()
    assert box["x"] > 1280 / 2 and box["y"] < 200, "Edit sits at the top right"
    edit.click()
    contact = page.get_by_role("region", name="Contact Information")
    expect(contact).to_be_visible()
    contact.get_by_label("Email password").fill(f"  {APP_PASSWORD}  ")  # pasted, with spaces
    contact.get_by_label("Automatic").check()
    shoot(page, "2-edit-filled")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Your settings were saved.")).to_be_visible()
    details = page.get_by_role("region", name="Contact Information")
    expect(details).to_contain_text("Saved")
    expect(details).to_contain_text("Automatic")
    shoot(page, "3-saved")
    assert APP_PASSWORD not in page.content()
    assert Profile.objects.get(user=user).get_email_password() == APP_PASSWORD


def test_webmail_opens_the_inbox_and_blocks_remote_images(page, automatic_user, shoot, watch):
    sign_in(page, "alice", USER_PASSWORD)
    nav(page, "Webmail").click()

    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_label("Email password")).to_have_count(0)
    shoot(page, "1-inbox")
    page.get_by_role("link", name="Newsletter with pictures").click()
    body = page.frame_locator("iframe.message-body")
    expect(body.get_by_text("Hello")).to_be_visible()
    expect(body.locator('img[alt="logo"]')).to_have_attribute("src", re.compile("^data:image/png"))
    shoot(page, "2-message-images-blocked")
    assert not [url for url in watch.requests if "tracker.example" in url]

    page.get_by_role("link", name="Show images").click()
    expect(page.frame_locator("iframe.message-body").get_by_text("Hello")).to_be_visible()
    page.wait_for_timeout(300)
    shoot(page, "3-images-shown")
    assert [url for url in watch.requests if "tracker.example" in url]


def test_manual_access_asks_for_the_password(page, automatic_user, mailbox, shoot):
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/settings/edit/")
    page.get_by_label("Manual").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your settings were saved.")).to_be_visible()

    nav(page, "Webmail").click()
    expect(page.get_by_role("heading", name="Sign in to your mailbox")).to_be_visible()
    expect(page.get_by_text(mailbox.email)).to_be_visible()
    shoot(page, "1-asked")
    page.get_by_label("Email password").fill(APP_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    shoot(page, "2-inbox")


def test_a_rejected_password_shows_guidance_then_a_notice_on_settings(page, user, mailbox, shoot):
    save_password(user, password="not-the-app-password", access=Profile.WebmailAccess.AUTOMATIC)
    sign_in(page, "alice", USER_PASSWORD)

    nav(page, "Webmail").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("rejected your saved email password")
    expect(alert).to_contain_text("app password")
    expect(alert.get_by_role("link", name="How to create an app password")).to_be_visible()
    shoot(page, "1-guidance")
    nav(page, "Settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Your saved email password was rejected")
    shoot(page, "2-settings-notice")


def test_the_edit_form_works_with_the_keyboard_alone(page, user, mailbox, shoot):
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/settings/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    while page.evaluate("document.activeElement.textContent.trim()") != "Edit":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/edit/")

    def tab_to(label):
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.labels?.[0]?.textContent.trim()") == label:
                return
        raise AssertionError(f"Tab never reached {label}")

    tab_to("First name")
    page.keyboard.press("Control+A")
    page.keyboard.type("Alicia")
    tab_to("Phone")
    page.keyboard.type("+44 20 7946 0999")
    tab_to("Email password")
    page.keyboard.type(APP_PASSWORD)
    tab_to("Manual")
    page.keyboard.press("ArrowDown")  # radio group: Manual -> Automatic
    shoot(page, "1-keyboard-filled")
    while page.evaluate("document.activeElement.textContent.trim()") != "Save":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Your settings were saved.")).to_be_visible()
    shoot(page, "2-saved")
    user.refresh_from_db()
    profile = Profile.objects.get(user=user)
    assert user.first_name == "Alicia"
    assert profile.phone == "+44 20 7946 0999"
    assert profile.webmail_access == "automatic"
    assert profile.get_email_password() == APP_PASSWORD
