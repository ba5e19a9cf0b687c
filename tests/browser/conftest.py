"""A real Chromium (Debian's) driven by Playwright against the app on a live server."""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

BASE_DIR = Path(__file__).resolve().parent.parent.parent
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = BASE_DIR / "var" / "screenshots"
AXE = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Playwright's sync API keeps an event loop in this thread; the test's own database work
# (making users) is synchronous all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (make test installs Debian's chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Watch:
    """Everything a page asks for, every dialog it opens, every console error."""

    def __init__(self, origin: str):
        self.origin = origin
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []

    def foreign(self) -> list[str]:
        """Requests to any host but the app's own (data: URLs stay inside the page)."""
        own = urlsplit(self.origin).netloc
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "about:")) and urlsplit(url).netloc != own
        ]


@pytest.fixture(autouse=True)
def plain_static_names(settings):
    """The live server serves static files from the app folders by their plain names, so pages
    ask for those; the hashed names production uses are checked under gunicorn (drills)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def watch(live_server):
    return Watch(live_server.url)


@pytest.fixture
def context(browser, live_server, watch):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.on("request", lambda request: watch.requests.append(request.url))
    yield context
    context.close()


@pytest.fixture
def page(context, watch):
    page = context.new_page()

    def on_dialog(dialog):
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda message: message.type == "error" and watch.console_errors.append(message.text),
    )
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def shoot(request):
    """Save a screenshot of a journey step into var/screenshots (git ignores var/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9_]+", "-", request.node.name.lower())

    def shoot(page, step: str) -> None:
        page.screenshot(path=SCREENSHOTS / f"{name}-{step}.png", full_page=True)

    return shoot


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def accessibility_violations(page) -> list[str]:
    """Serious and critical axe-core findings on the page, as readable lines."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document)")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
