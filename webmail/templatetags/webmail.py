import hashlib
from functools import cache
from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@cache
def _webmail_url() -> str:
    return reverse("webmail:open")


@register.filter
def folder_url(folder: str, **params) -> str:
    """The Webmail address of a folder (the Inbox needs no parameter), with `params`."""
    query = {"folder": folder} if folder != "INBOX" else {}
    query.update({name: value for name, value in params.items() if value})
    return _webmail_url() + (f"?{urlencode(query)}" if query else "")


@register.simple_tag
def attachment_url(uid: int, part: str, folder: str) -> str:
    base = reverse("webmail:attachment", args=[uid, part])
    return f"{base}?{urlencode({'folder': folder})}"


# New mail without a reload (issue 13) ---------------------------------------------------------


@register.simple_tag
def news_since(folder_list: str, messages: int | None = None) -> str:
    """A short digest of what the page shows: the folder list and, with rows, the folder's size.

    The page sends it back when it asks for news; the same digest means nothing changed.
    """
    shown = f"{folder_list}\x00{'' if messages is None else messages}"
    return hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()


@register.simple_tag
def poll_seconds() -> int:
    return max(1, settings.WEBMAIL_POLL_SECONDS)
