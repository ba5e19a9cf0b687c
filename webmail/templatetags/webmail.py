from functools import cache
from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@cache
def _webmail_url() -> str:
    return reverse("webmail:open")


@register.filter
def folder_url(folder: str) -> str:
    """The Webmail address of a folder (the Inbox needs no parameter)."""
    base = _webmail_url()
    return base if folder == "INBOX" else f"{base}?{urlencode({'folder': folder})}"


@register.simple_tag
def attachment_url(uid: int, part: str, folder: str) -> str:
    base = reverse("webmail:attachment", args=[uid, part])
    return f"{base}?{urlencode({'folder': folder})}"
