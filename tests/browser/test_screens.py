"""Every page fits a phone, a tablet and a desktop: no sideways scrolling, readable subjects."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import USER_PASSWORD

SCREENS = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 820, "height": 1180},
    "desktop": {"width": 1280, "height": 800},
}
NARROWEST = {"width": 320, "height": 640}
TARGETS = "main a, main button, main select, header a, header button, main input[type=checkbox]"


@pytest.fixture(params=list(SCREENS))
def screen(request):
    return request.param


@pytest.fixture
def sized(browser, live_server, screen):
    """A page in a window of the screen's size, and a way to save its screenshot."""
    context = browser.new_context(base_url=live_server.url, viewport=SCREENS[screen])
    page = context.new_page()
    page.set_default_timeout(15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> None:
        """The whole page, and what the first screen shows."""
        page.screenshot(path=SCREENSHOTS / f"screen-{screen}-{name}.png", full_page=True)
        page.screenshot(path=SCREENSHOTS / f"screen-{screen}-{name}-first.png")

    yield page, shoot
    context.close()


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def hidden_subjects(page) -> list[str]:
    """Subjects in the message list that are cut to nothing or covered by something else."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.messages .col-subject a')].filter(link => {
            const box = link.getBoundingClientRect();
            if (box.width < 40 || box.height < 10) return true;
            link.scrollIntoView({block: 'center'});
            const now = link.getBoundingClientRect();
            const top = document.elementFromPoint(now.x + now.width / 2, now.y + now.height / 2);
            return !(top === link || link.contains(top));
        }).map(link => link.textContent.trim())"""
    )


def small_targets(page) -> list[str]:
    """Links and buttons smaller than 24 × 24 CSS pixels (WCAG 2.2 target size, minimum)."""
    return page.evaluate(
        """targets => [...document.querySelectorAll(targets)]
            .filter(el => el.offsetParent !== null && !el.closest('p, li, dd'))
            .filter(el => {
                const box = el.getBoundingClientRect();
                return box.width < 24 || box.height < 24;
            })
            .map(el => el.outerHTML.slice(0, 80))""",
        TARGETS,
    )


def test_the_inbox_shows_readable_rows_first_and_fits(sized, screen, automatic_user, mailbox):
    page, shoot = sized
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    shoot("inbox")

    assert overflow(page) <= 0
    first_row = page.locator(".messages tbody tr").first.bounding_box()
    assert first_row["y"] + first_row["height"] <= SCREENS[screen]["height"], "rows in first screen"
    assert hidden_subjects(page) == []
    assert small_targets(page) == []
    font = page.locator("#search-q").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert font >= 16, "phones zoom into smaller inputs"


def test_a_message_opens_with_its_subject_first_and_fits(sized, screen, automatic_user, mailbox):
    page, shoot = sized
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/")
    page.get_by_role("link", name="Newsletter with pictures").click()
    subject = page.get_by_role("heading", name="Newsletter with pictures")
    expect(subject).to_be_in_viewport()
    back = page.get_by_role("link", name="Back to the folder")
    assert back.bounding_box()["y"] < subject.bounding_box()["y"]
    page.frame_locator("iframe.message-body").get_by_text("Hello").wait_for()
    shoot("message")

    assert overflow(page) <= 0
    frame = page.locator("iframe.message-body").bounding_box()
    main = page.locator("main .mail-main").bounding_box()
    assert frame["width"] >= main["width"] - 48, "the body is as wide as the column"
    assert small_targets(page) == []


@pytest.mark.parametrize(
    "path", ["/settings/", "/settings/edit/", "/help/email-password/", "/accounts/login/"]
)
def test_other_pages_fit(sized, screen, user, mailbox, path):
    page, shoot = sized
    if path != "/accounts/login/":
        sign_in(page, "alice", USER_PASSWORD)
    page.goto(path)
    page.wait_for_load_state()
    shoot(path.strip("/").replace("/", "-"))

    assert overflow(page) <= 0
    assert small_targets(page) == []


def test_the_webmail_sign_in_page_fits(sized, screen, user, mailbox):
    page, shoot = sized
    sign_in(page, "alice", USER_PASSWORD)
    page.goto("/webmail/")
    expect(page.get_by_role("heading", name="Sign in to your mailbox")).to_be_visible()
    shoot("webmail-sign-in")

    assert overflow(page) <= 0
    assert small_targets(page) == []


def test_the_narrowest_phone_still_fits(browser, live_server, automatic_user, mailbox):
    context = browser.new_context(base_url=live_server.url, viewport=NARROWEST)
    page = context.new_page()
    sign_in(page, "alice", USER_PASSWORD)
    for path in ["/webmail/", "/webmail/message/59/?folder=INBOX", "/settings/edit/"]:
        page.goto(path)
        assert overflow(page) <= 0, path
    page.goto("/webmail/")
    assert hidden_subjects(page) == []
    page.screenshot(path=SCREENSHOTS / "screen-320-inbox.png", full_page=True)
    context.close()


def test_the_checks_would_see_a_wide_page_and_a_covered_subject(browser, live_server, user):
    """The checks above mean something: an element wider than the window, a covered row."""
    context = browser.new_context(base_url=live_server.url, viewport=SCREENS["phone"])
    page = context.new_page()
    page.goto("/accounts/login/")
    page.evaluate(
        """() => {
        const wide = document.createElement('div');
        wide.style.width = '500px'; wide.style.height = '5px';
        document.querySelector('main').append(wide);
        const table = document.createElement('table');
        table.className = 'messages';
        table.innerHTML = '<tbody><tr><td class="col-subject"><a href="#">Covered subject</a></td>'
            + '<td class="col-date">20 Nov</td></tr></tbody>';
        const date = table.querySelector('.col-date');
        // As the date column once did: laid over the subject.
        date.style.cssText = 'position: fixed; inset: 0 0 auto 0; height: 100vh; background: #fff';
        document.querySelector('main').prepend(table);
    }"""
    )
    assert overflow(page) > 0
    assert hidden_subjects(page) == ["Covered subject"]
    context.close()


def test_the_webmail_journey_works_at_each_width(sized, screen, automatic_user, mailbox):
    """Open a folder, search, read, go back, act on a selected message: at every width."""
    page, shoot = sized
    sign_in(page, "alice", USER_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webmail").click()
    folders = page.get_by_role("navigation", name="Folders")
    if screen == "phone":
        expect(folders).to_be_hidden()
        page.get_by_text("Folders", exact=True).click()
    folders.get_by_role("link", name="Müller").click()
    expect(page.get_by_role("heading", name="Müller")).to_be_visible()
    assert hidden_subjects(page) == []
    if screen == "phone":
        page.get_by_text("Folders", exact=True).click()
    folders.get_by_role("link", name="Inbox").click()

    page.get_by_label("Search this folder").fill("Signed")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Signed form attached").click()
    expect(page.get_by_role("heading", name="Signed form attached")).to_be_in_viewport()
    expect(page.get_by_role("link", name="signed form.pdf")).to_be_visible()
    page.get_by_role("link", name="Back to the folder").click()

    row = page.locator(".messages tr", has_text="Message 50")
    row.get_by_role("checkbox").check()
    mark = page.get_by_role("button", name="Mark unread")
    expect(mark).to_be_in_viewport()  # on a phone, in the bar that appears at the bottom
    shoot("selected")
    mark.click()
    expect(page.get_by_text("Marked 1 message as unread.")).to_be_visible()
    expect(page.locator(".messages tr.unread", has_text="Message 50")).to_have_count(1)
    assert overflow(page) <= 0
