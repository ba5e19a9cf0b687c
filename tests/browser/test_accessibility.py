"""axe-core finds no serious or critical problem on the pages staff use."""

import pytest

from tests.browser.conftest import accessibility_violations, sign_in
from tests.conftest import USER_PASSWORD


@pytest.fixture
def a11y_page(browser, live_server):
    """A page that lets axe-core be injected (the app's CSP would refuse it, rightly)."""
    context = browser.new_context(
        base_url=live_server.url, bypass_csp=True, viewport={"width": 1280, "height": 900}
    )
    yield context.new_page()
    context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/help/email-password/",
        "/settings/",
        "/settings/edit/",
        "/webmail/",
        "/webmail/message/58/?folder=INBOX",
        "/webmail/message/60/?folder=INBOX",
        "/webmail/compose/",
        "/webmail/message/59/forward/?folder=INBOX",
    ],
)
def test_no_serious_accessibility_problems(a11y_page, automatic_user, path):
    if path != "/accounts/login/":
        sign_in(a11y_page, "alice", USER_PASSWORD)
    a11y_page.goto(path)

    assert accessibility_violations(a11y_page) == []


def test_the_sign_in_form_and_errors_are_accessible(a11y_page, user, mailbox):
    sign_in(a11y_page, "alice", USER_PASSWORD)
    a11y_page.goto("/settings/edit/")
    a11y_page.get_by_label("Email address").fill("not an address")
    a11y_page.get_by_label("Automatic").check()
    a11y_page.get_by_role("button", name="Save").click()
    a11y_page.get_by_text("Please correct the errors below.").wait_for()

    assert accessibility_violations(a11y_page) == []
    webmail = a11y_page.goto("/webmail/")
    assert webmail.ok
    assert accessibility_violations(a11y_page) == []


def test_axe_would_report_a_problem(a11y_page, live_server):
    """The checks above mean something: axe finds an image without a text alternative."""
    a11y_page.goto("/help/email-password/")
    a11y_page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")

    assert any(line.startswith("image-alt") for line in accessibility_violations(a11y_page))


@pytest.mark.parametrize("path", ["/webmail/", "/webmail/message/59/?folder=INBOX", "/settings/"])
def test_no_serious_accessibility_problems_on_a_phone(browser, live_server, automatic_user, path):
    """The phone layout (rows as cards, folders folded away) keeps the page's meaning."""
    context = browser.new_context(
        base_url=live_server.url, bypass_csp=True, viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    sign_in(page, "alice", USER_PASSWORD)
    page.goto(path)

    assert accessibility_violations(page) == []
    context.close()
