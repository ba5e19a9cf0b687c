"""Microsoft 365 sign-in in a real browser, through the stand-in identity provider's page."""

from playwright.sync_api import expect

from settings_app.models import Profile
from tests.browser.conftest import accessibility_violations, sign_in
from tests.conftest import USER_PASSWORD


def test_a_user_connects_microsoft_365_and_webmail_opens(
    browser, live_server, microsoft_user, identity_provider, shoot
):
    Profile.objects.filter(user=microsoft_user).update(
        email_sign_in=Profile.EmailSignIn.PASSWORD, webmail_access=Profile.WebmailAccess.MANUAL
    )
    # The stand-in's HTTPS certificate comes from a throwaway CA this browser does not know.
    context = browser.new_context(base_url=live_server.url, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, "carol", USER_PASSWORD)
        page.goto("/settings/edit/")
        contact = page.get_by_role("region", name="Contact Information")
        contact.get_by_label("Microsoft 365 account").check()
        contact.get_by_label("Automatic").check()
        shoot(page, "1-choose-microsoft")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Your settings were saved.")).to_be_visible()
        expect(page.get_by_text("Not connected")).to_be_visible()
        shoot(page, "2-not-connected")

        page.get_by_role("button", name="Connect Microsoft account").click()
        expect(page.get_by_role("heading", name="Sign in to your account")).to_be_visible()
        expect(page.get_by_label("Account")).to_have_value(microsoft_user.email)
        shoot(page, "3-microsoft-sign-in")
        page.get_by_role("button", name="Accept").click()

        expect(page.get_by_text(f"Connected as {microsoft_user.email}")).to_be_visible()
        assert page.url == f"{live_server.url}/settings/"
        shoot(page, "4-connected")

        page.goto("/webmail/")
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        expect(page.get_by_role("link", name="Quarterly review")).to_be_visible()
        expect(page.get_by_label("Email password")).to_have_count(0)
        shoot(page, "5-inbox")
        tokens = Profile.objects.get(user=microsoft_user).get_microsoft_tokens()
        assert tokens["access_token"] not in page.content()
    finally:
        context.close()


def test_manual_asks_to_sign_in_with_microsoft_in_an_accessible_page(
    browser, live_server, microsoft_user, identity_provider
):
    Profile.objects.filter(user=microsoft_user).update(webmail_access=Profile.WebmailAccess.MANUAL)
    # bypass_csp lets axe-core be injected; the journey above runs under the app's real CSP.
    context = browser.new_context(
        base_url=live_server.url, ignore_https_errors=True, bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, "carol", USER_PASSWORD)
        page.goto("/webmail/")
        page.goto("/settings/")
        expect(page.get_by_text("Not connected")).to_be_visible()
        assert accessibility_violations(page) == []
        page.goto("/webmail/")
        expect(page.get_by_role("heading", name="Sign in with Microsoft")).to_be_visible()
        assert accessibility_violations(page) == []
        page.get_by_role("button", name="Sign in with Microsoft").click()
        page.get_by_role("button", name="Accept").click()
        expect(page.get_by_role("link", name="Quarterly review")).to_be_visible()
        assert Profile.objects.get(user=microsoft_user).microsoft_token == ""
    finally:
        context.close()
