"""Helpers for the tests of writing mail: read what arrived, fill in the compose form."""

import secrets
import time
from email import policy
from email.parser import BytesParser


def arrived(maildir, *, count=1, timeout=15.0):
    """The messages delivered into a Maildir's Inbox, waiting for `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted((maildir / "new").iterdir()) + sorted((maildir / "cur").iterdir())
        if len(files) >= count or time.monotonic() > deadline:
            return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
        time.sleep(0.05)


def stored(maildir, folder):
    """The messages in one of a Maildir's folders (Sent, Drafts)."""
    path = maildir / f".{folder}"
    files = [f for sub in ("new", "cur") if (path / sub).exists() for f in (path / sub).iterdir()]
    return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]


def alert(response) -> str:
    """The error box of a page, to show why a test failed."""
    page = response.content.decode()
    start = page.find('role="alert"')
    return page[start : start + 1500] if start >= 0 else page[:1500]


def form(**fields):
    return {"action": "send", "token": secrets.token_urlsafe(20), **fields}
