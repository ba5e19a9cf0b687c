"""Writing mail: compose, reply, reply all, forward, drafts. The work is in webmail.sending."""

import secrets

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from settings_app.models import profile_for
from webmail import imap, outgoing, sending, services
from webmail.forms import ComposeForm, MessageQueryForm
from webmail.links import folder_url
from webmail.outgoing import Attachment, Draft, InvalidMessage
from webmail.views import _message_url, _valid, mail_view

ANSWER_KINDS = {"reply": "reply", "reply-all": "reply", "forward": "forward"}


def _token() -> str:
    return secrets.token_urlsafe(24)


def _page(request, form, *, attachments=(), kept=None, error=None, status=200):
    """The compose form; `attachments` are those kept on the server (of a draft or forward)."""
    kept = set(kept if kept is not None else [part.number for part in attachments])
    context = {
        "form": form,
        "attachments": [(part, part.number in kept) for part in attachments],
        "error": error,
        "sender": sending.sender_address(request.user),
        "max_bytes": settings.WEBMAIL_MAX_MESSAGE_BYTES,
    }
    response = render(request, "webmail/compose.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _initial(draft: Draft, **extra) -> dict:
    return {
        "to": draft.to,
        "cc": draft.cc,
        "bcc": draft.bcc,
        "subject": draft.subject,
        "body": draft.body,
        "in_reply_to": draft.in_reply_to,
        "references": draft.references,
        "token": _token(),
        **extra,
    }


@require_http_methods(["GET", "POST"])
@mail_view
def compose(request):
    if request.method == "POST":
        return _submitted(request)
    draft_uid = request.GET.get("draft", "")
    if draft_uid:
        if not draft_uid.isdigit() or not 0 < int(draft_uid) < 2**32:
            raise imap.NotFound("There is no such draft.")
        draft, attachments, _ = sending.draft_open(request, int(draft_uid))
        form = ComposeForm(initial=_initial(draft, draft_uid=int(draft_uid)))
        return _page(request, form, attachments=attachments)
    # A new message starts with the signature; a resumed draft already has what the user kept.
    body = outgoing.signed("", profile_for(request.user).signature)
    return _page(request, ComposeForm(initial={"token": _token(), "body": body}))


@require_GET
@mail_view
def answer(request, uid, kind):
    """The compose form filled in for a reply, a reply to all or a forward."""
    folder = _valid(MessageQueryForm(request.GET))["folder"]
    draft, attachments, _ = sending.answer_prepare(request, folder=folder, uid=uid, kind=kind)
    draft.body = outgoing.signed(draft.body, profile_for(request.user).signature)
    form = ComposeForm(
        initial=_initial(
            draft, origin_folder=folder, origin_uid=uid, origin_kind=ANSWER_KINDS[kind]
        )
    )
    return _page(request, form, attachments=attachments)


def _uploads(files) -> list[Attachment]:
    total = sum(upload.size for upload in files)
    if total > settings.WEBMAIL_MAX_MESSAGE_BYTES:
        raise InvalidMessage(
            f"The attachments come to {total / 1024 / 1024:.1f} MB; at most "
            f"{settings.WEBMAIL_MAX_MESSAGE_BYTES / 1024 / 1024:.1f} MB can be sent."
        )
    return [
        Attachment(
            filename=upload.name,
            content_type=upload.content_type or "application/octet-stream",
            data=upload.read(),
        )
        for upload in files
    ]


def _submitted(request):
    form = ComposeForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    origin = None
    if data["origin_kind"]:
        origin = sending.Origin(data["origin_folder"], data["origin_uid"], data["origin_kind"])
    # Attachments kept on the server: the draft's own, else those of the forwarded original.
    carried = None
    if data["draft_uid"]:
        carried = sending.Carried(None, data["draft_uid"], data["keep"])
    elif origin is not None and origin.kind == "forward":
        carried = sending.Carried(origin.folder, origin.uid, data["keep"])
    try:
        draft = Draft(
            to=data["to"],
            cc=data["cc"],
            bcc=data["bcc"],
            subject=data["subject"],
            body=data["body"],
            in_reply_to=data["in_reply_to"],
            references=data["references"],
            attachments=_uploads(data["attachments"]),
        )
        if data["action"] == "draft":
            try:
                uid = sending.draft_save(
                    request, draft=draft, carried=carried, draft_uid=data["draft_uid"]
                )
            except imap.MailError as exc:
                error = {"title": "The draft could not be saved", "message": exc.message}
                return _page(request, form, error=error, status=exc.status)
            messages.success(request, "Your draft is saved in Drafts.")
            if uid is None:
                return redirect(folder_url(sending.drafts_folder(request)))
            return redirect(f"{reverse('webmail:compose')}?draft={uid}")
        result = sending.message_send(
            request,
            draft=draft,
            token=data["token"],
            carried=carried,
            draft_uid=data["draft_uid"],
            origin=origin,
        )
    except InvalidMessage as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    if isinstance(result.error, sending.AlreadySent):
        messages.info(request, result.error.message)
        return redirect("webmail:open")
    if not result.sent:
        return _not_sent(request, form, result)
    count = len(sending.outgoing.recipients(draft)) - len(result.refused)
    messages.success(request, f"Sent to {count} recipient{'' if count == 1 else 's'}.")
    if result.refused:
        messages.warning(
            request,
            "These recipients did not get it: "
            + "; ".join(f"{who} ({why})" for who, why in result.refused.items()),
        )
    for warning in result.warnings:
        messages.warning(request, warning)
    if origin is not None:
        return redirect(_message_url(origin.folder, origin.uid))
    return redirect("webmail:open")


def _not_sent(request, form, result):
    """The form again, with everything the user wrote and why it was not sent."""
    error = result.error
    data = form.data.copy()
    attachments = result.attachments or []
    if result.draft_uid:
        data["draft_uid"] = str(result.draft_uid)
        data.setlist("keep", [])
        if result.attachments is None:
            try:
                attachments = sending.draft_attachments(request, result.draft_uid)
            except (imap.MailError, *services.SIGN_IN_FAILURES):
                attachments = []
    form = ComposeForm(data)
    form.is_valid()
    title = getattr(error, "title", "The message was not sent")
    text = getattr(error, "message", str(error))
    kept = (
        "Your message is kept in Drafts."
        if result.draft_uid
        else ("Your message could not be saved in Drafts either; it is still in this form.")
    )
    refused = getattr(error, "refused", {})
    return _page(
        request,
        form,
        attachments=attachments,
        error={"title": title, "message": text, "kept": kept, "refused": refused},
        status=200,
    )
