"""Addresses of Webmail's pages, for views and templates alike."""

from functools import cache
from urllib.parse import urlencode

from django.urls import reverse


@cache
def _webmail_url() -> str:
    return reverse("webmail:open")


def folder_url(folder: str, **params) -> str:
    """The Webmail address of a folder (the Inbox needs no parameter), with `params`."""
    query = {"folder": folder} if folder != "INBOX" else {}
    query.update({name: value for name, value in params.items() if value})
    return _webmail_url() + (f"?{urlencode(query)}" if query else "")


def attachment_url(uid: int, part: str, folder: str) -> str:
    base = reverse("webmail:attachment", args=[uid, part])
    return f"{base}?{urlencode({'folder': folder})}"
