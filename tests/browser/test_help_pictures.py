"""The help page's pictures are screenshots of the real pages, marked where to click.

`make screenshots` runs this file with HELP_PICTURES=write to save them under static/; the
ordinary test run takes them again and fails when a page no longer looks like its picture
(a different size means the page changed), so they are regenerated whenever pages change.
"""

import os
import struct

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import BASE_DIR, sign_in
from tests.conftest import USER_PASSWORD

PICTURES = BASE_DIR / "static" / "img" / "help"
WRITE = os.environ.get("HELP_PICTURES") == "write"
MARK = "el => { el.style.outline = '4px solid #d9480f'; el.style.outlineOffset = '4px'; }"


@pytest.fixture
def help_page(browser, live_server, user):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 960, "height": 640}, device_scale_factor=1
    )
    page = context.new_page()
    sign_in(page, "alice", USER_PASSWORD)
    yield page
    context.close()


def size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    return struct.unpack(">II", png[16:24])


def keep(name: str, png: bytes) -> None:
    path = PICTURES / f"{name}.png"
    if WRITE:
        PICTURES.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return
    assert path.exists(), f"{path.name} is missing: run make screenshots"
    assert size(path.read_bytes()) == size(png), f"{path.name} is out of date: make screenshots"


def test_the_pictures_show_the_current_pages(help_page):
    page = help_page
    page.goto("/settings/")
    page.get_by_role("link", name="Edit", exact=True).evaluate(MARK)
    keep("settings-edit", page.screenshot(clip={"x": 0, "y": 0, "width": 960, "height": 300}))

    page.goto("/settings/edit/")
    contact = page.get_by_role("region", name="Contact Information")
    contact.get_by_label("Email password").evaluate(MARK)
    contact.locator("fieldset").filter(has_text="Webmail access").evaluate(MARK)
    keep("edit-contact", contact.screenshot())


def test_the_help_page_shows_the_pictures_with_text_alternatives(help_page):
    page = help_page
    page.goto("/help/email-password/")
    pictures = page.locator("figure img")

    expect(pictures).to_have_count(2)
    for picture in pictures.all():
        assert len(picture.get_attribute("alt")) > 30
        assert picture.evaluate("img => img.complete && img.naturalWidth > 0")
