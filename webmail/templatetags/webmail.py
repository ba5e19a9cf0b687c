from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone

register = template.Library()


@register.filter
def folder_url(folder: str) -> str:
    """The Webmail address of a folder (the Inbox needs no parameter)."""
    base = reverse("webmail:open")
    return base if folder == "INBOX" else f"{base}?{urlencode({'folder': folder})}"


@register.simple_tag
def message_url(uid: int, folder: str) -> str:
    return f"{reverse('webmail:message', args=[uid])}?{urlencode({'folder': folder})}"


@register.simple_tag
def attachment_url(uid: int, part: str, folder: str) -> str:
    base = reverse("webmail:attachment", args=[uid, part])
    return f"{base}?{urlencode({'folder': folder})}"


@register.filter
def mail_date(value) -> str:
    """Today's mail shows its time, this year's its day and month, older mail the full date."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = timezone.localdate()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"
