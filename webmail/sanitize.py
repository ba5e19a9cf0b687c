"""Make an HTML email safe to show: nh3 (the Ammonia sanitiser) with an allow-list for mail.

Scripts, event handlers, forms, frames, <style> blocks and every URL scheme but http(s), mailto
and cid go. Remote images stay out unless the user allowed them, inline `cid:` images become
data: URLs of the message's own image parts, and style attributes keep only properties that
cannot load anything or cover the page. The iframe's sandbox and Content-Security-Policy are a
second wall behind this one.
"""

import copy
import re
from urllib.parse import unquote

import nh3

TAGS = nh3.ALLOWED_TAGS | {"font", "big", "u"}
ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
ATTRIBUTES["*"] = {
    "style", "dir", "lang", "title", "align", "valign", "bgcolor", "width", "height", "border",
}  # fmt: skip
ATTRIBUTES["table"] = ATTRIBUTES.get("table", set()) | {"cellpadding", "cellspacing"}
ATTRIBUTES["font"] = {"color", "face", "size"}
ATTRIBUTES["img"] = ATTRIBUTES.get("img", set()) | {"src", "alt"}
URL_SCHEMES = {"http", "https", "mailto", "cid"}
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent",
    "text-transform", "line-height", "letter-spacing", "word-spacing", "white-space",
    "vertical-align", "direction", "width", "height", "max-width", "min-width", "max-height",
    "min-height", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left", "border",
    "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
    "list-style-type", "table-layout", "display",
}  # fmt: skip
# Style values that load or compute something (old IE's expression(), url() in any property,
# CSS escapes that could spell either): the whole style attribute goes.
UNSAFE_STYLE = re.compile(r"expression|url\s*\(|\\|@import|behavior|binding", re.IGNORECASE)
# A cid: URL in any case, up to where an attribute value or CSS url() ends.
CID_URL = re.compile(r"cid:([^\"' >)]*)", re.IGNORECASE | re.ASCII)


def clean_html(
    html: str, *, inline_images: dict[str, str], allow_remote: bool, inline_budget: int
) -> str:
    """Return the HTML without anything that could run, load or cover the page.

    Inline images go in as data: URLs while their total stays within `inline_budget`
    characters: a message could otherwise repeat one big image in thousands of tags.
    """
    budget = inline_budget

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        nonlocal budget
        if tag == "img" and attribute == "src":
            lowered = value.lower()
            if lowered.startswith("cid:"):
                image = inline_images.get(unquote(value[4:]).strip().strip("<>"))
                if image is None or len(image) > budget:
                    return None
                budget -= len(image)
                return image
            if lowered.startswith(("http:", "https:")) and allow_remote:
                return value
            return None
        if attribute == "style" and UNSAFE_STYLE.search(value):
            return None
        return value

    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        url_relative="deny",
        attribute_filter=attribute_filter,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def cid_references(html: str) -> set[str]:
    """The Content-IDs an HTML body refers to with cid: URLs."""
    # Matched in the original text: lower-casing can change its length ("İ" becomes two
    # characters), so offsets found in a lower-cased copy cut the original in wrong places.
    return {unquote(match.group(1)).strip().strip("<>") for match in CID_URL.finditer(html)}
