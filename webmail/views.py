import base64
import hashlib
from functools import wraps
from typing import NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template import engines
from django.template.backends.utils import csrf_input
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from settings_app import connection, microsoft
from settings_app.models import profile_for
from webmail import imap, mime, sanitize, services
from webmail.forms import ActionForm, MailboxQueryForm, MessageQueryForm, SignInForm
from webmail.links import folder_url

CHUNK = 256 * 1024
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
# Read in one FETCH, whose command line servers limit (Dovecot: 64 KB): far more than a
# newsletter's images, far less than a hostile message's thousands of parts.
INLINE_IMAGES_AT_MOST = 100


class BadRequest(Exception):
    pass


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


def render_partial(name: str, context: dict, request=None) -> SafeString:
    """A *.jinja partial, rendered by the Jinja2 engine (which autoescapes; webmail.jinja).

    With `request`, the template also has `csrf_input` for its forms: made once, where the
    engine's own would mask a new token for every form.
    """
    if request is not None:
        context = {**context, "csrf_input": csrf_input(request)}
    template = engines["jinja2"].get_template(name)
    return mark_safe(template.render(context))  # noqa: S308


class Row(NamedTuple):
    """What one row of the message list shows (a tuple: Jinja2 reads its fields fastest)."""

    uid: int
    css: str
    who: str
    who_title: str
    subject: str
    unread: bool
    flagged: bool
    iso: str
    title: str
    short: str
    size: str


def message_rows(page: imap.Page, *, recipients: bool, today) -> SafeString:
    """The rows of the message list as HTML, from a Jinja2 template (which escapes)."""
    rows = []
    for message in page.messages:
        local = timezone.localtime(message.date) if message.date else None
        if recipients:
            who, who_title = message.recipients or "(no recipient)", ""
        else:
            who, who_title = message.sender or "(unknown sender)", message.sender_address
        css = ("" if message.seen else "unread") + (" flagged" if message.flagged else "")
        rows.append(
            Row(
                uid=message.uid,
                css=css.strip(),
                who=who,
                who_title=who_title,
                subject=message.subject or "(no subject)",
                unread=not message.seen,
                flagged=message.flagged,
                iso=local.isoformat() if local else "",
                title=f"{local.day} {local:%B %Y, %H:%M}" if local else "",
                short=short_date(local, today) if local else "",
                size=size_text(message.size),
            )
        )
    context = {
        "rows": rows,
        "base": reverse("webmail:open") + "message/",
        "query": urlencode({"folder": page.folder}),
    }
    return render_partial("webmail/includes/message_rows.jinja", context)


def folder_parts(mail: imap.Mailbox, folders: list[imap.Folder], folder: str) -> dict:
    """The folder list and the Move options, rendered once while the folders look the same."""
    shape = tuple((f.name, f.unseen, f.selectable) for f in folders)
    context = {"folders": folders, "folder": folder}
    return {
        name: remembered(
            mail, (name, folder, shape), lambda template=template: render_partial(template, context)
        )
        for name, template in (
            ("folder_list", "webmail/includes/folders.jinja"),
            ("move_options", "webmail/includes/move_options.jinja"),
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
        "microsoft_configured": microsoft.is_configured(),
    }
    return render(request, "webmail/sign_in.html", context, status=status)


def _microsoft_sign_in_page(request, exc):
    """Ask to sign in with Microsoft (Manual), or to connect or reconnect in Settings."""
    context = {
        "profile": profile_for(request.user),
        "problem": str(exc),
        "reconnect_since": exc.reconnect_since,
        "next": _safe_next(request, request.get_full_path(), reverse("webmail:open")),
    }
    return microsoft.allow_sign_in_redirect(
        render(request, "webmail/microsoft_sign_in.html", context)
    )


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
        except connection.MicrosoftSignInNeeded as exc:
            return _microsoft_sign_in_page(request, exc)
        except microsoft.MicrosoftError as exc:
            return _error_page(request, exc.title, exc.message, exc.status)
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
        "title": current.label if current else folder,
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
    # New mail comes with the rows only on the first page of the folder, not of a search.
    rows_too = page.number == 1 and not query["q"]
    context.update(
        _news_context(folder, parts["folder_list"], current.messages if current else None, rows_too)
    )
    main = render_partial("webmail/includes/mailbox_main.jinja", context, request)
    return render(request, "webmail/mailbox.html", {"title": context["title"], "main": main})


def news_since(folder_list: str, messages: int | None = None) -> str:
    """A short digest of what the page shows: the folder list and, with rows, the folder's size.

    The page sends it back when it asks for news; the same digest means nothing changed.
    """
    shown = f"{folder_list}\x00{'' if messages is None else messages}"
    return hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()


def _news_context(folder: str, folder_list: str, messages: int | None, rows: bool) -> dict:
    """What a page's script needs to ask for news (the `news` view) every so often."""
    query = {"folder": folder, **({"rows": "1"} if rows else {})}
    return {
        "poll_seconds": max(1, settings.WEBMAIL_POLL_SECONDS),
        "news_url": f"{reverse('webmail:news')}?{urlencode(query)}",
        "since": news_since(folder_list, messages if rows else None),
    }


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
        # The HTML is read now, with the headers, so the body frame's request needs no command.
        shown = mail.message(
            folder,
            uid,
            text_limit=settings.WEBMAIL_TEXT_LIMIT,
            html_limit=None if show_text else settings.WEBMAIL_HTML_LIMIT,
        )
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
        **_news_context(folder, parts["folder_list"], None, rows=False),
    }
    main = render_partial("webmail/includes/message_main.jinja", context, request)
    return render(request, "webmail/message.html", {"message": shown, "main": main})


def _inline_images(mail, shown, html: str) -> dict[str, str]:
    """data: URLs of the message's own images that the HTML refers to, within the budget,
    read with one command however many there are (a signature's logos, say)."""
    wanted, budget = {}, settings.WEBMAIL_INLINE_IMAGES_LIMIT
    for content_id in sorted(sanitize.cid_references(html)):
        part = shown.inline_parts.get(content_id)
        # Base64 makes a part's transfer size about the size of its data: URL.
        if part is None or part.content_type not in INLINE_IMAGE_TYPES or part.size > budget:
            continue
        wanted[content_id] = part
        budget -= part.size
        if len(wanted) == INLINE_IMAGES_AT_MOST:
            break
    raw = mail.parts_bytes(shown.uid, {part.number: part.size + 4 for part in wanted.values()})
    images = {}
    for content_id, part in wanted.items():
        data = base64.b64encode(mime.decode_transfer(raw[part.number], part.encoding)).decode()
        images[content_id] = f"data:{part.content_type};base64,{data}"
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
        shown, html, truncated = mail.html_body(folder, uid, limit=settings.WEBMAIL_HTML_LIMIT)
        if shown.html_part is None:
            raise imap.NotFound("This message has no HTML part.")
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


# New mail without a reload, and stepping through messages (issue 13) ------------------------
# An open Webmail page asks for news every WEBMAIL_POLL_SECONDS while it is visible
# (static/js/webmail.js). The pooled connection answers with NOOP and one LIST-STATUS; the
# first page's rows are fetched only when what the page shows has changed.


@require_GET
@mail_view
def news(request):
    """The folder list and the open folder's first page, if they changed since `since`."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    with_rows = request.GET.get("rows") == "1"
    with services.mailbox_open(request) as mail:
        mail.select(folder)  # NOOP on the open folder: the server tells of new mail
        folders = mail.folders()
        current = next((f for f in folders if f.name == folder), None)
        folder_list = folder_parts(mail, folders, folder)["folder_list"]
        since = news_since(folder_list, current.messages if with_rows and current else None)
        if since == request.GET.get("since"):
            response = HttpResponse(status=204)
            response["Cache-Control"] = "private, no-store"
            return response
        inbox = next((f for f in folders if f.name.upper() == "INBOX"), None)
        found = {"since": since, "unread": inbox.unseen if inbox else 0, "folders": folder_list}
        if with_rows:
            page = mail.page(folder, 1)
            shows_recipients = current is not None and current.special in ("\\Sent", "\\Drafts")
            today = timezone.localdate()
            found["rows"] = remembered(
                mail,
                ("rows", page.key, shows_recipients, today),
                lambda: message_rows(page, recipients=shows_recipients, today=today),
            )
            found["range"] = f"{page.first}–{page.last} of {page.count}"
    response = JsonResponse(found)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@mail_view
def step(request, uid):
    """Open the message after (older) or before (newer) this one in its folder's list."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    older = request.GET.get("to") != "newer"
    with services.mailbox_open(request) as mail:
        found = mail.neighbour(folder, uid, older=older)
    if found is None:
        messages.info(
            request, f"This is the {'oldest' if older else 'newest'} message in this folder."
        )
        found = uid
    return redirect(_message_url(folder, found))
