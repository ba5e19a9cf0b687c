import base64
from functools import wraps
from html import escape
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from settings_app.models import profile_for
from webmail import imap, mime, sanitize, services
from webmail.forms import ActionForm, MailboxQueryForm, MessageQueryForm, SignInForm
from webmail.templatetags.webmail import folder_url

CHUNK = 256 * 1024
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


class BadRequest(Exception):
    pass


FLAG_MARK = '<span class="mark-flag" title="Flagged" aria-hidden="true">⚑</span>'
UNREAD = '<span class="visually-hidden">Unread: </span>'
FLAGGED = '<span class="visually-hidden">Flagged: </span>'


def remembered(mail: imap.Mailbox, key: tuple, make) -> SafeString:
    """What `make()` renders, kept with the connection for as long as `key` describes it.

    Keys hold everything the HTML depends on (the messages and their flags, the folders and
    their counts, the day), so a page that looks the same is not rendered again.
    """
    if key not in mail.rendered:
        if len(mail.rendered) > 50:
            mail.rendered.clear()
        mail.rendered[key] = make()
    return mail.rendered[key]


def message_rows(page: imap.Page, *, recipients: bool, today) -> SafeString:
    """The rows of the message list as HTML, every value escaped with html.escape.

    Built in Python rather than with template tags or format_html: a page has 50 rows, and
    rendering them either way took longer than the whole exchange with the mail server.
    """
    base = reverse("webmail:open") + "message/"
    query = escape(urlencode({"folder": page.folder}))
    rows = []
    for message in page.messages:
        local = timezone.localtime(message.date) if message.date else None
        if recipients:
            who, who_title = message.recipients or "(no recipient)", ""
        else:
            who, who_title = message.sender or "(unknown sender)", message.sender_address
        subject = escape(message.subject or "(no subject)")
        css = ("" if message.seen else "unread") + (" flagged" if message.flagged else "")
        marks = ("" if message.seen else UNREAD) + (FLAGGED if message.flagged else "")
        rows.append(
            f'<tr class="{css.strip()}"><td class="col-select"><input type="checkbox" name="uid" '
            f'value="{message.uid}" id="select-{message.uid}"><label for="select-{message.uid}" '
            f'class="visually-hidden">Select “{subject}”</label></td>'
            f'<td class="col-from" title="{escape(who_title)}">{escape(who)}</td>'
            f'<td class="col-subject">{FLAG_MARK if message.flagged else ""}'
            f'<a href="{base}{message.uid}/?{query}">{marks}{subject}</a></td>'
            f'<td class="col-date"><time datetime="{local.isoformat() if local else ""}" '
            f'title="{f"{local.day} {local:%B %Y, %H:%M}" if local else ""}">'
            f"{short_date(local, today) if local else ''}</time></td>"
            f'<td class="col-size">{size_text(message.size)}</td></tr>'
        )
    return mark_safe("\n".join(rows))  # noqa: S308  (every value is escaped)


def folder_parts(mail: imap.Mailbox, folders: list[imap.Folder], folder: str) -> dict:
    """The folder list and the Move options, rendered once while the folders look the same."""
    shape = tuple((f.name, f.unseen, f.selectable) for f in folders)
    context = {"folders": folders, "folder": folder}
    return {
        name: remembered(
            mail,
            (name, folder, shape),
            lambda template=template: mark_safe(render_to_string(template, context)),  # noqa: S308
        )
        for name, template in (
            ("folder_list", "webmail/includes/folders.html"),
            ("move_options", "webmail/includes/move_options.html"),
        )
    }


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def short_date(local, today) -> str:
    """Today's mail shows its time, this year's its day and month, older mail the full date."""
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"


def _valid(form):
    if not form.is_valid():
        errors = [error for field_errors in form.errors.values() for error in field_errors]
        raise BadRequest(" ".join(errors))
    return form.cleaned_data


def _message_url(folder: str, uid: int, name: str = "webmail:message", **params) -> str:
    query = urlencode({"folder": folder, **{k: v for k, v in params.items() if v}})
    return f"{reverse(name, args=[uid])}?{query}"


def _safe_next(request, url: str, fallback: str) -> str:
    """`url` if it stays on this site (and on HTTPS when the request is), else `fallback`."""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def _sign_in_page(request, *, form=None, rejected=None, problem="", status=200):
    profile = profile_for(request.user)
    next_url = request.POST.get("next") or request.GET.get("next") or request.get_full_path()
    next_url = _safe_next(request, next_url, reverse("webmail:open"))
    context = {
        "form": form or SignInForm(),
        "profile": profile,
        "rejected": rejected,
        "problem": problem,
        "server": imap.Server.from_settings(),
        "next": next_url,
    }
    return render(request, "webmail/sign_in.html", context, status=status)


def _error_page(request, title: str, message: str, status: int):
    context = {"title": title, "message": message, "status": status}
    return render(request, "webmail/error.html", context, status=status)


def mail_view(view):
    """Turn every way a mailbox can fail into a page that says what happened."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except services.NoEmailAddress as exc:
            return _sign_in_page(request, problem=str(exc))
        except services.SignInNeeded:
            return _sign_in_page(request)
        except imap.PasswordRejected as exc:
            return _sign_in_page(request, rejected=exc)
        except services.Throttled as exc:
            return _sign_in_page(request, problem=str(exc), status=429)
        except (BadRequest, imap.UnsafeInput) as exc:
            return _error_page(request, "That request cannot be used", str(exc), 400)
        except imap.MailError as exc:
            return _error_page(request, exc.title, exc.message, exc.status)

    return wrapper


@require_GET
@mail_view
def open_webmail(request):
    query = _valid(MailboxQueryForm(request.GET))
    folder = query["folder"]
    with services.mailbox_open(request) as mail:
        if query["q"]:
            page = mail.search(folder, query["field"], query["q"], query["page"])
        else:
            page = mail.page(folder, query["page"])
        # After the folder is open and up to date, so its unread count is current too.
        folders = mail.folders()
        current = next((f for f in folders if f.name == folder), None)
        shows_recipients = current is not None and current.special in ("\\Sent", "\\Drafts")
        today = timezone.localdate()
        rows = remembered(
            mail,
            ("rows", page.key, shows_recipients, today),
            lambda: message_rows(page, recipients=shows_recipients, today=today),
        )
        parts = folder_parts(mail, folders, folder)
    context = {
        **parts,
        "folder": folder,
        "current": current,
        "page": page,
        "rows": rows,
        "query": query,
        "search_fields": MailboxQueryForm.base_fields["field"].choices,
        "shows_recipients": shows_recipients,
        "previous_url": folder_url(
            folder, page=page.number - 1, q=query["q"], field=query["q"] and query["field"]
        ),
        "next_url": folder_url(
            folder, page=page.number + 1, q=query["q"], field=query["q"] and query["field"]
        ),
        "here": request.get_full_path(),
    }
    return render(request, "webmail/mailbox.html", context)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
@mail_view
def sign_in(request):
    form = SignInForm(request.POST or None)
    if form.is_valid():
        try:
            services.mailbox_sign_in(request, form.cleaned_data["password"])
        except services.PasswordCannotBeKept as exc:
            return _sign_in_page(request, form=form, problem=str(exc), status=503)
        return redirect(_safe_next(request, request.POST.get("next", ""), reverse("webmail:open")))
    return _sign_in_page(request, form=form)


@require_POST
def sign_out(request):
    services.session_password_drop(request)
    messages.success(request, "You have left Webmail. A password you typed for it is forgotten.")
    return redirect("settings_app:show")


@require_GET
@mail_view
def message(request, uid):
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    show_text = request.GET.get("view") == "text"
    with services.mailbox_open(request) as mail:
        shown = mail.message(folder, uid, text_limit=settings.WEBMAIL_TEXT_LIMIT)
        if shown.html_part and shown.text_part and show_text:
            shown.text, shown.text_truncated = mail.part_text(
                shown.text_part, uid, settings.WEBMAIL_TEXT_LIMIT
            )
        if not shown.seen:
            mail.mark(folder, [uid], "seen", on=True)
        folders = mail.folders()
        parts = folder_parts(mail, folders, folder)
    images = request.GET.get("images") == "1"
    context = {
        **parts,
        "folder": folder,
        "message": shown,
        "show_text": show_text or not shown.html_part,
        "images": images,
        "body_url": _message_url(folder, uid, "webmail:body", images="1" if images else ""),
        "images_url": _message_url(folder, uid, images="1"),
        "text_url": _message_url(folder, uid, view="text"),
        "html_url": _message_url(folder, uid),
        "source_url": _message_url(folder, uid, "webmail:source"),
        "back_url": folder_url(folder),
        "here": request.get_full_path(),
        # Writing mail: reply and forward links, or "continue writing" for a draft.
        "folder_query": urlencode({"folder": folder}),
        "is_draft": any(f.name == folder and f.special == "\\Drafts" for f in folders),
    }
    return render(request, "webmail/message.html", context)


def _inline_images(mail, shown, html: str) -> dict[str, str]:
    """data: URLs of the message's own images that the HTML refers to, within the budget."""
    images, budget = {}, settings.WEBMAIL_INLINE_IMAGES_LIMIT
    for content_id in sanitize.cid_references(html):
        part = shown.inline_parts.get(content_id)
        # Base64 makes a part's transfer size about the size of its data: URL.
        if part is None or part.content_type not in INLINE_IMAGE_TYPES or part.size > budget:
            continue
        raw = mail.part_bytes(part.number, shown.uid, 0, part.size + 4)
        data = base64.b64encode(mime.decode_transfer(raw, part.encoding)).decode()
        images[content_id] = f"data:{part.content_type};base64,{data}"
        budget -= len(images[content_id])
    return images


def _body_policy(images: bool) -> str:
    sources = "data: https: http:" if images else "data:"
    return (
        f"default-src 'none'; img-src {sources}; style-src 'unsafe-inline'; font-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


@require_GET
@xframe_options_sameorigin
@mail_view
def body(request, uid):
    """The sanitised HTML of a message, for the sandboxed iframe of the message page."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    images = request.GET.get("images") == "1"
    with services.mailbox_open(request) as mail:
        shown = mail.structure(folder, uid)
        if shown.html_part is None:
            raise imap.NotFound("This message has no HTML part.")
        html, truncated = mail.part_text(shown.html_part, uid, settings.WEBMAIL_HTML_LIMIT)
        inline = _inline_images(mail, shown, html)
    cleaned = sanitize.clean_html(
        html,
        inline_images=inline,
        allow_remote=images,
        inline_budget=settings.WEBMAIL_INLINE_IMAGES_LIMIT,
    )
    context = {"body": cleaned, "truncated": truncated}
    response = render(request, "webmail/body.html", context)
    response["Content-Security-Policy"] = _body_policy(images)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


class _Download:
    """A download's chunks, with the lent mailbox handed back when the response closes.

    Django closes a streaming response even when the client left before the first chunk,
    when a generator's own `finally` would never run.
    """

    def __init__(self, lease: services.Lease, chunks):
        self.lease = lease
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        self.lease.release()


def _download(request, folder: str, uid: int, number: str, content_type: str, disposition):
    """Stream a part (decoded), or the whole message for number "", as a locked-down file."""
    lease = services.mailbox_lease(request)
    try:
        with lease.mailbox.deadline():
            part = lease.mailbox.structure(folder, uid).part(number) if number else None
        if number and part is None:
            raise imap.NotFound("This message has no such attachment.")
    except BaseException:
        lease.release()
        raise
    raw = lease.mailbox.stream(folder, uid, number, CHUNK)
    chunks = mime.decode_stream(raw, part.encoding) if part else raw
    response = StreamingHttpResponse(_Download(lease, chunks), content_type=content_type)
    response["Content-Disposition"] = disposition(part)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


def _safe_filename(name: str, fallback: str) -> str:
    cleaned = "".join(ch for ch in name if ch not in '/\\:*?"<>|').strip(" .")[:150]
    return cleaned or fallback


@require_GET
@mail_view
def attachment(request, uid, part):
    """Download a part: always as a file, never shown in the browser."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    fallback = f"attachment-{uid}-{part}"
    return _download(
        request,
        folder,
        uid,
        imap.check_part(part),
        "application/octet-stream",
        lambda found: content_disposition_header(True, _safe_filename(found.filename, fallback)),
    )


@require_GET
@mail_view
def source(request, uid):
    """The message exactly as stored, as plain text."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    return _download(
        request,
        folder,
        uid,
        "",
        "text/plain; charset=utf-8",
        lambda _: content_disposition_header(False, f"message-{uid}.eml"),
    )


@require_POST
@mail_view
def act(request):
    """Mark, flag, move or delete messages, then go back where the user was."""
    form = ActionForm(request.POST)
    if "folder" in form.errors or "target" in form.errors:
        _valid(form)  # text that must not reach the server: refuse outright
    folder = form.cleaned_data.get("folder", "INBOX")
    next_url = _safe_next(request, request.POST.get("next", ""), folder_url(folder))
    if form.errors:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(next_url)
    data = form.cleaned_data
    uids, action = data["uid"], data["action"]
    count = f"{len(uids)} message{'' if len(uids) == 1 else 's'}"
    with services.mailbox_open(request) as mail:
        if action in ("read", "unread"):
            mail.mark(folder, uids, "seen", on=action == "read")
            done = f"Marked {count} as {action}."
        elif action in ("flag", "unflag"):
            mail.mark(folder, uids, "flagged", on=action == "flag")
            done = f"Flagged {count}." if action == "flag" else f"Removed the flag from {count}."
        elif action == "move":
            mail.move(folder, uids, data["target"])
            next_url = folder_url(folder)
            done = f"Moved {count} to {data['target']}."
        else:
            if mail.deletes_for_good(folder) and not data["confirmed"]:
                context = {
                    "folder": folder,
                    "uids": uids,
                    "next": next_url,
                    "count": count,
                    "has_trash": mail.trash is not None,
                }
                return render(request, "webmail/confirm_delete.html", context)
            for_good = mail.delete(folder, uids)
            next_url = folder_url(folder)
            done = f"Deleted {count} for good." if for_good else f"Moved {count} to Trash."
    messages.success(request, done)
    return redirect(next_url)
