"""Writing mail: sending over SMTP, drafts, copies in Sent, replies and forwards.

IMAP work (reading attachments to carry over, saving drafts and copies, setting flags) and
the SMTP submission run in separate steps, so a slow upload never runs into the IMAP deadline.
Whatever fails, what the user wrote is kept: as a draft in the Drafts folder when the mail
server can take it, and in the form that comes back in any case.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from email.headerregistry import Address
from html import unescape

import nh3
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from settings_app.models import AuditEvent
from settings_app.services import audit_record
from webmail import imap, mime, outgoing, services, smtp
from webmail.models import Submission
from webmail.outgoing import Attachment, Draft, InvalidMessage

DRAFT_FLAGS = ["\\Draft", "\\Seen"]
logger = logging.getLogger(__name__)


class NotSent(Exception):
    """Sending was refused before anything reached the server (a limit, a repeat)."""

    def __init__(self, message: str, *, title: str = "The message was not sent"):
        super().__init__(message)
        self.message = message
        self.title = title


class AlreadySent(NotSent):
    """This form was sent before (a double click or a resubmitted form)."""


@dataclass
class Carried:
    """Attachments that stay on the mail server until sending: of a draft, or a forward."""

    folder: str | None  # None: the Drafts folder
    uid: int
    parts: list[str] = field(default_factory=list)


@dataclass
class Origin:
    """The message a reply or forward comes from, flagged once the new one is sent."""

    folder: str
    uid: int
    kind: str  # "reply" or "forward"

    @property
    def flag(self) -> str:
        return "\\Answered" if self.kind == "reply" else "$Forwarded"


@dataclass
class Result:
    sent: bool
    draft_uid: int | None = None  # where the message is kept as a draft, if it is
    error: Exception | None = None  # why it was not sent
    refused: dict[str, str] = field(default_factory=dict)  # recipients who did not get it
    warnings: list[str] = field(default_factory=list)  # what went wrong after sending
    # The kept draft's attachments, listed right after keeping it (None: not listed).
    attachments: list[mime.Part] | None = None


def sender_address(user) -> Address:
    """From is always the user's contact email, with their name."""
    return Address(display_name=user.get_full_name(), addr_spec=user.email)


# Attachments ----------------------------------------------------------------------------------


def carried_attachments(mail: imap.Mailbox, carried: Carried | None) -> list[Attachment]:
    """Fetch the kept attachments of a draft or forwarded message from the server."""
    if carried is None or not carried.parts:
        return []
    folder = carried.folder or _drafts_folder(mail)
    shown = mail.structure(folder, carried.uid)
    found = []
    for number in carried.parts:
        part = shown.part(imap.check_part(number))
        if part is None or part not in shown.attachments:
            continue
        if part.size > settings.WEBMAIL_MAX_MESSAGE_BYTES:
            raise InvalidMessage(f"The attachment “{part.filename}” is too large to send.")
        raw = mail.part_bytes(number, carried.uid, 0, part.size + 1024)
        found.append(
            Attachment(
                filename=part.filename or "attachment",
                content_type=part.content_type,
                data=mime.decode_transfer(raw, part.encoding),
            )
        )
    return found


def attachment_list(mail: imap.Mailbox, folder: str, uid: int) -> list[mime.Part]:
    """The attachments of a message, for the form to list (their bytes stay on the server)."""
    return list(mail.structure(folder, uid).attachments)


def _built(draft: Draft, user, *, is_draft: bool) -> bytes:
    raw = outgoing.build(draft, sender=sender_address(user), is_draft=is_draft).as_bytes()
    if len(raw) > settings.WEBMAIL_MAX_MESSAGE_BYTES:
        limit = settings.WEBMAIL_MAX_MESSAGE_BYTES / 1024 / 1024
        raise InvalidMessage(
            f"With its attachments the message is {len(raw) / 1024 / 1024:.1f} MB; at most "
            f"{limit:.1f} MB can be sent. Remove an attachment or send it as a link."
        )
    return raw


# Drafts ---------------------------------------------------------------------------------------


def _drafts_folder(mail: imap.Mailbox) -> str:
    folder = mail.special_folder("\\Drafts")
    if folder is None:
        raise imap.NotFound("Your mailbox has no Drafts folder.")
    return folder


def draft_save(
    request, *, draft: Draft, carried: Carried | None, draft_uid: int | None
) -> int | None:
    """Save the draft (attachments included) in Drafts, replacing its earlier version.

    Returns the new draft's UID (None if the server does not say).
    """
    with services.mailbox_open(request) as mail:
        draft.attachments = [*carried_attachments(mail, carried), *draft.attachments]
        raw = _built(draft, request.user, is_draft=True)
        folder = _drafts_folder(mail)
        uid = mail.append(folder, raw, DRAFT_FLAGS)
        if draft_uid and draft_uid != uid:
            mail.remove(folder, [draft_uid])
    return uid


def draft_open(request, uid: int) -> tuple[Draft, list[mime.Part], str]:
    """A saved draft as form fields, its attachments, and the Drafts folder's name."""
    with services.mailbox_open(request) as mail:
        folder = _drafts_folder(mail)
        raw = mail.raw_message(folder, uid, limit=settings.WEBMAIL_MAX_MESSAGE_BYTES * 2)
        attachments = attachment_list(mail, folder, uid)
    draft = outgoing.read_draft(raw)
    draft.attachments = []  # they stay on the server, listed by part
    return draft, attachments, folder


def draft_attachments(request, uid: int) -> list[mime.Part]:
    with services.mailbox_open(request) as mail:
        return attachment_list(mail, _drafts_folder(mail), uid)


def drafts_folder(request) -> str:
    with services.mailbox_open(request) as mail:
        return _drafts_folder(mail)


# Sending --------------------------------------------------------------------------------------


def _begin(user, token: str, count: int) -> Submission:
    """Record the send before it starts; refuse a repeat, the hourly limit, too many at once."""
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                submission = Submission.objects.create(
                    user=user, token=token, mailbox=user.email, recipients=count
                )
        except IntegrityError:
            submission = Submission.objects.select_for_update().get(user=user, token=token)
            if submission.state == Submission.State.SENT:
                raise AlreadySent(
                    "This message was already sent; it was not sent again.",
                    title="Already sent",
                ) from None
            if submission.state == Submission.State.SENDING:
                raise AlreadySent(
                    "This message is being sent already; it will not be sent twice.",
                    title="Already being sent",
                ) from None
            submission.state = Submission.State.SENDING
            submission.recipients = count
            submission.started_at = now
            submission.save(update_fields=["state", "recipients", "started_at"])
        hour_ago = now - timedelta(hours=1)
        used = (
            Submission.objects.filter(user=user, started_at__gte=hour_ago)
            .exclude(state=Submission.State.FAILED)
            .exclude(pk=submission.pk)
            .aggregate(total=Sum("recipients"))["total"]
            or 0
        )
    limit = settings.WEBMAIL_SEND_RECIPIENTS_PER_HOUR
    if used + count > limit:
        _finish(submission, Submission.State.FAILED)
        raise NotSent(
            f"You can send to at most {limit} recipients an hour, and you have sent to {used} "
            "in the last hour. Your message is kept as a draft; send it later.",
            title="Sending limit reached",
        )
    # Rows still sending count against the mailbox's connections; one left by a crash stops
    # counting after a while.
    stale = now - timedelta(
        seconds=(settings.WEBMAIL_SMTP_TIMEOUT + imap.REJECTION_DELAY_ALLOWANCE) * 10
    )
    ahead = Submission.objects.filter(
        mailbox=user.email,
        state=Submission.State.SENDING,
        started_at__gte=stale,
        pk__lt=submission.pk,
    ).count()
    if ahead >= settings.WEBMAIL_SMTP_MAX_CONNECTIONS_PER_MAILBOX:
        _finish(submission, Submission.State.FAILED)
        raise NotSent(
            "Your mailbox is sending other messages at this moment. Your message is kept as a "
            "draft; send it again in a minute.",
            title="Your mailbox is sending too many messages at once",
        )
    return submission


def _finish(submission: Submission, state: str) -> None:
    Submission.objects.filter(pk=submission.pk).update(state=state)


def _sent_copy_wanted() -> bool:
    choice = settings.WEBMAIL_SENT_COPY
    if choice == "auto":
        return not smtp.SmtpServer.from_settings().is_microsoft
    return choice == "append"


@sensitive_variables("login")
def message_send(
    request,
    *,
    draft: Draft,
    token: str,
    carried: Carried | None = None,
    draft_uid: int | None = None,
    origin: Origin | None = None,
) -> Result:
    """Send the message once for `token`; whatever fails, keep it as a draft and say why.

    Raises InvalidMessage for form input that cannot make a message (nothing is sent or kept:
    the form comes back as it was).
    """
    user = request.user
    envelope = outgoing.recipients(draft)  # refuses bad addresses and control characters
    outgoing.build(draft, sender=sender_address(user))  # refuses bad headers before anything
    if not envelope:
        raise InvalidMessage("Add at least one recipient.")
    try:
        submission = _begin(user, token, len(envelope))
    except AlreadySent as exc:
        return Result(sent=False, error=exc, draft_uid=draft_uid)
    except NotSent as exc:
        return _kept(request, draft, carried, draft_uid, exc)
    uploaded = list(draft.attachments)
    try:
        with services.mailbox_open(request) as mail:
            carried_now = carried_attachments(mail, carried)
        draft.attachments = [*carried_now, *uploaded]
        raw = _built(draft, user, is_draft=False)
        login = services.sending_login(request)
        refused = smtp.submit(
            smtp.SmtpServer.from_settings(),
            login,
            sender=user.email,
            recipients=envelope,
            raw=raw,
        )
    except (smtp.SendError, imap.MailError, InvalidMessage, *services.SIGN_IN_FAILURES) as exc:
        # For operators: the kind of failure and the server's own words, never the content.
        logger.warning(
            "Sending failed for user %s: %s (%s)",
            user.pk,
            type(exc).__name__,
            getattr(exc, "reply", "") or exc,
        )
        _finish(submission, Submission.State.FAILED)
        draft.attachments = uploaded
        result = _kept(request, draft, carried, draft_uid, exc)
        if isinstance(exc, smtp.TokenRefused):
            # Only now, with the draft kept while the mailbox is still open: from here on the
            # next sign-in, to either server, gets a fresh access token first.
            services.sending_token_refused(request)
        return result
    except BaseException:
        _finish(submission, Submission.State.FAILED)
        raise
    _finish(submission, Submission.State.SENT)
    reached = len(envelope) - len(refused)
    audit_record(
        actor=user,
        subject=user,
        action=AuditEvent.Action.MAIL_SENT,
        source=AuditEvent.Source.WEBMAIL,
        detail=f"{reached} recipient{'' if reached == 1 else 's'}"
        + (f", {len(refused)} refused" if refused else ""),
    )
    warnings = _after_sending(request, outgoing.with_bcc(raw, draft), draft_uid, origin)
    return Result(sent=True, refused=refused, warnings=warnings)


def _after_sending(request, raw: bytes, draft_uid: int | None, origin: Origin | None) -> list:
    """Keep a copy in Sent, remove the draft, flag the original; the message is sent anyway."""
    warnings = []
    try:
        with services.mailbox_open(request) as mail:
            if _sent_copy_wanted():
                folder = mail.special_folder("\\Sent")
                if folder is None:
                    warnings.append("Your mailbox has no Sent folder, so no copy was kept.")
                else:
                    mail.append(folder, raw, ["\\Seen"])
            if draft_uid:
                mail.remove(_drafts_folder(mail), [draft_uid])
            if origin is not None:
                mail.add_flags(origin.folder, [origin.uid], [origin.flag])
    except (imap.MailError, *services.SIGN_IN_FAILURES) as exc:
        warnings.append(f"The message was sent, but tidying up afterwards failed: {exc}")
    return warnings


def _kept(request, draft: Draft, carried, draft_uid, error: Exception) -> Result:
    """Keep the unsent message as a draft; the result says why it was not sent."""
    try:
        uid = draft_save(request, draft=draft, carried=carried, draft_uid=draft_uid)
    except (imap.MailError, InvalidMessage, *services.SIGN_IN_FAILURES):
        return Result(sent=False, error=error, draft_uid=draft_uid)
    try:
        attachments = draft_attachments(request, uid) if uid else None
    except (imap.MailError, *services.SIGN_IN_FAILURES):
        attachments = None
    return Result(sent=False, error=error, draft_uid=uid, attachments=attachments)


# Replies and forwards -------------------------------------------------------------------------


def _original_text(mail: imap.Mailbox, shown: mime.Message) -> str:
    """The original's text for quoting: its text part, else its HTML without the markup."""
    limit = settings.WEBMAIL_TEXT_LIMIT
    if shown.text:
        return shown.text
    if shown.text_part is not None:
        return mail.part_text(shown.text_part, shown.uid, limit)[0]
    if shown.html_part is not None:
        html = mail.part_text(shown.html_part, shown.uid, limit)[0]
        text = unescape(nh3.clean(html, tags=set()))
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return ""


def answer_prepare(request, *, folder: str, uid: int, kind: str) -> tuple[Draft, list, Origin]:
    """The compose form's start for a reply ("reply", "reply-all") or a forward ("forward").

    Returns the draft, the original's attachments (forwards carry them, fetched when sent)
    and the origin to flag once sent.
    """
    with services.mailbox_open(request) as mail:
        shown = mail.message(folder, uid, text_limit=settings.WEBMAIL_TEXT_LIMIT)
        original = outgoing.read_original(mail.header_bytes(folder, uid))
        text = _original_text(mail, shown)
    date = timezone.localtime(shown.date) if shown.date else None
    sender = shown.sender or "an unknown sender"
    if kind == "forward":
        draft = Draft(
            subject=outgoing.forward_subject(shown.subject),
            references=original.message_id,
            body=outgoing.forwarded(
                text, sender=sender, date=date, subject=shown.subject, to=shown.to
            ),
        )
        return draft, shown.attachments, Origin(folder, uid, "forward")
    draft = outgoing.reply_to(
        original, subject=shown.subject, own=request.user.email, everyone=kind == "reply-all"
    )
    draft.body = outgoing.quoted(text, date=date, sender=sender)
    return draft, [], Origin(folder, uid, "reply")
