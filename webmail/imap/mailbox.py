"""The signed-in connection and the commands Webmail sends on it."""

import imaplib
import ipaddress
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from imapclient import IMAPClient
from imapclient import exceptions as imap_errors
from imapclient.response_parser import parse_message_list, parse_response

from clientmanager.reporting import DropSecretFrames
from webmail.imap.connection import REJECTION_DELAY_ALLOWANCE, Server, _Client, _Guard
from webmail.imap.data import PAGE_SIZE, Folder, FolderState, Page, Summary, pages_for
from webmail.imap.errors import (
    MailError,
    NotFound,
    PasswordRejected,
    ProtocolError,
    TimedOut,
    TokenRejected,
    UnsafeInput,
    _refusal,
    _translate,
    check_folder,
    check_part,
    check_text,
)
from webmail.imap.parsing import (
    _arrange,
    _folder,
    _folder_name,
    _listed,
    _name_special_uses,
    _parse_list_fetch,
    _summary,
)
from webmail.mime import Message, Part, addresses, as_text, aware, decode_part, pairs, read_header

LIST_ITEMS = ["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE"]
# "n (UID u FLAGS (...))" in either order: the one answer read on every page view.
_FLAGS_ANSWER = re.compile(rb"^(\d+) \((?=.*\bUID (\d+))(?=.*\bFLAGS \(([^)]*)\)).*\)$")
# Envelopes a connection keeps for reuse; past this many it starts again.
SUMMARY_CACHE_SIZE = 5_000
# Without LIST-STATUS each folder's counts cost a STATUS command: they are kept this long per
# connection, and fetched within this share of the timeout (the rest show no count for now).
STATUS_TTL_SECONDS = 30.0
STATUS_SHARE_OF_TIMEOUT = 0.3
# An opened message's HTML waits this long, with the connection, for its body frame's request.
BODY_KEEP_SECONDS = 60.0
BODIES_KEPT = 4
SEARCH_FIELDS = {"sender": "FROM", "subject": "SUBJECT", "text": "TEXT"}


class Mailbox:
    """A signed-in IMAP connection with the operations Webmail needs.

    Not thread-safe: one request uses it at a time (webmail.pool hands it out).
    """

    def __init__(self, server: Server, *, client_address: str = ""):
        self.server = server
        self.client_address = client_address  # the browser's, for the server's logs and limits
        self._guard = _Guard()
        self._client: IMAPClient | None = None
        self.broken = False
        self.selected: FolderState | None = None
        self._synced = False  # whether the open folder was brought up to date in this request
        self.trash: str | None = None
        self._looked_for_trash = False
        # Envelopes, sizes and dates by (folder, UIDVALIDITY, UID): they never change for a UID,
        # so a page shown again needs only its flags from the server.
        self._summaries: dict[tuple[str, int, int], Summary] = {}
        self._listed: set[tuple[str, int]] = set()  # (folder, UIDVALIDITY) seen in _summaries
        # Folder counts read with STATUS, by folder: (when, messages, unseen).
        self._counts: dict[str, tuple[float, int, int]] = {}
        # What views made from this connection's data, under keys they choose (Page.key).
        self.rendered: dict = {}
        # HTML read with a message page, for its body frame: (folder, UIDVALIDITY, UID) ->
        # (when, structure, html, truncated).
        self._bodies: dict[tuple[str, int, int], tuple[float, Message, str, bool]] = {}

    @property
    def commands(self) -> int:
        """IMAP commands sent on this connection so far."""
        return self._guard.commands

    def socket(self):
        """The connection's socket, for checking it is still open; None when closed."""
        return self._guard.sock if self._client is not None else None

    # Deadlines and errors

    @contextmanager
    def deadline(self, seconds: float | None = None) -> Iterator["Mailbox"]:
        """Run the block within the server timeout (or `seconds`), translating every failure."""
        self._guard.start(self.server.timeout if seconds is None else seconds)
        try:
            with self._translated():
                yield self
                if self._guard.expired:  # the socket was shut under a call that then "worked"
                    raise OSError("The deadline passed.")
        finally:
            self._guard.cancel()

    @contextmanager
    def _translated(self):
        """Turn failures of the connection into MailErrors; let everything else through.

        Only the socket, TLS and IMAP libraries speak for the server. Any other exception is a
        bug in Webmail (a template, a decoder) and must reach the error log as itself, not be
        blamed on the mail server. Either way the connection is not reused: a command may have
        been cut off half-way.
        """
        try:
            yield
        except (MailError, UnsafeInput):
            raise
        except Exception as exc:
            self.broken = True
            if self._guard.expired:
                raise TimedOut(
                    f"{self.server.host} did not answer within {self.server.timeout:g} seconds."
                ) from exc
            if isinstance(exc, (OSError, EOFError, imaplib.IMAP4.error)):
                raise _translate(exc, self.server) from exc
            raise

    def connect(self) -> "Mailbox":
        """Open the connection, encrypted, without signing in; raise a MailError saying why not.

        Nothing secret is sent: sign_in() then only signs in.
        """
        with self.deadline():
            self._connect()
        return self

    @sensitive_variables("password")
    def sign_in(self, username: str, password: str) -> "Mailbox":
        """Connect (unless connect() did) and sign in; raise a MailError saying why not."""
        check_text(username, what="user name", max_length=320)
        check_text(password, what="password", max_length=1024)
        with self.deadline():
            if self._client is None:
                self._connect()
            self._log_in(username, password)
            # Keep the capabilities the server sent with its answer to LOGIN; SELECT would
            # forget them and imapclient would ask again.
            self._client.capabilities()
        return self

    @sensitive_variables("access_token")
    def sign_in_oauth2(self, username: str, access_token: str) -> "Mailbox":
        """Connect and sign in with AUTHENTICATE XOAUTH2 (Microsoft 365); raise a MailError."""
        check_text(username, what="user name", max_length=320)
        check_text(access_token, what="access token", max_length=6000)
        with self.deadline():
            self._connect()
            try:
                with DropSecretFrames():
                    self._client.oauth2_login(username, access_token)
            except imap_errors.LoginError as exc:
                if isinstance(exc.__context__, imaplib.IMAP4.abort):
                    raise exc.__context__ from None  # the line dropped: no answer to the token
                # Dovecot answers [UNAVAILABLE] when it cannot ask the identity provider.
                raise _refusal(str(exc), self.server.host) or TokenRejected(
                    f"{self.server.host} did not accept the Microsoft sign-in for {username}."
                ) from exc
            finally:
                with suppress(AttributeError):
                    self._client._imap._cmd_log.clear()
            self._client.capabilities()
        return self

    def _connect(self) -> None:
        """Open the connection, encrypted before anything secret is sent."""
        self.server.require_encryption()
        self._client = _Client(self.server, self._guard)
        if self.server.security == "starttls":
            if not self._client.has_capability("STARTTLS"):
                raise ProtocolError(
                    f"{self.server.host} does not offer STARTTLS, so the connection cannot "
                    "be encrypted. Webmail never sends a password unencrypted."
                )
            self._client.starttls(self.server.ssl_context())
            self._guard.attach(self._client._imap.sock)
        if not isinstance(self._client._imap.sock, ssl.SSLSocket):
            raise ProtocolError("The connection is not encrypted, so no password is sent.")
        if self.server.sends_client_address and not self.server.is_microsoft:
            self._introduce()

    def _introduce(self) -> None:
        """Tell the server whose sign-in this is (IMAP ID, RFC 2971), before any password.

        A server that trusts Webmail's address (Dovecot: login_trusted_networks) then logs the
        browser's address and slows only that address after a rejected password; Webmail is
        otherwise one address for all its users. The ID is advice: a refusal changes nothing.
        """
        try:  # from X-Forwarded-For, where a misconfigured proxy lets anything through
            address = str(ipaddress.ip_address(self.client_address))
        except ValueError:
            return
        # imaplib's list, read with the greeting or after STARTTLS: imapclient would ask again.
        if "ID" not in self._client._imap.capabilities:
            return
        with suppress(imap_errors.IMAPClientError):
            self._client.id_({"name": "Client Manager Webmail", "x-originating-ip": address})

    @sensitive_variables("password")
    def _log_in(self, username: str, password: str) -> None:
        """Send the password, and read the server's answer by its response code."""
        patience = self.server.timeout + REJECTION_DELAY_ALLOWANCE
        self._guard.extend(patience)
        self._client.socket().settimeout(patience)
        try:
            with DropSecretFrames():
                if (username + password).isascii():
                    self._client.login(username, password)
                elif self._client.has_capability("AUTH=PLAIN"):
                    # LOGIN can only carry ASCII (imaplib would refuse); SASL PLAIN is UTF-8.
                    self._client.plain_login(username, password)
                else:
                    raise ProtocolError(
                        f"{self.server.host} cannot take a user name or password with "
                        "characters beyond plain ASCII (it does not offer AUTHENTICATE PLAIN)."
                    )
        except imap_errors.LoginError as exc:
            if isinstance(exc.__context__, imaplib.IMAP4.abort):
                raise exc.__context__ from None  # the line dropped: no answer to the password
            raise _refusal(str(exc), self.server.host) or PasswordRejected(str(exc)) from exc
        finally:
            # imaplib keeps the last lines it sent, LOGIN and the password among them.
            with suppress(AttributeError):
                self._client._imap._cmd_log.clear()
            with suppress(OSError):
                self._client.socket().settimeout(self.server.timeout)

    def close(self) -> None:
        """Log out politely if possible; never raise."""
        client, self._client = self._client, None
        if client is None:
            return
        self._guard.start(2)
        try:
            if not self.broken:
                client.logout()
        except Exception:  # noqa: S110  (the connection is being dropped anyway)
            pass
        finally:
            self._guard.cancel()
            with suppress(Exception):
                client.shutdown()

    def reset(self) -> None:
        """Start a new request: the open folder is brought up to date before it is used."""
        self._synced = False

    def cache_bytes(self) -> int:
        """A cheap estimate of the mail data kept for reuse (about 1 KB per envelope)."""
        rendered = sum(len(value) for value in self.rendered.values() if isinstance(value, str))
        bodies = sum(1024 + len(html) for _, _, html, _ in self._bodies.values())
        return len(self._summaries) * 1024 + rendered + bodies

    # Folders

    def folders(self) -> list[Folder]:
        """All folders, Inbox first, then Drafts, Sent, Trash, then the rest, with counts."""
        if self._client.has_capability("LIST-STATUS"):
            folders = self._folders_with_status()
        else:
            folders = self._folders_then_status()
        _name_special_uses(folders)
        folders.sort(key=lambda folder: folder.sort_key)
        self.trash = next((f.name for f in folders if f.special == "\\Trash"), None)
        self._looked_for_trash = True
        return folders

    def _folders_with_status(self) -> list[Folder]:
        """LIST-STATUS (RFC 5819): every folder and its counts in one command."""
        imap = self._client._imap
        typ, data = imap._simple_command(
            "LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))"
        )
        if typ != "OK":
            raise ProtocolError(f"The folder list could not be read: {as_text(data[0])}")
        _, listed = imap._untagged_response(typ, data, "LIST")
        _, statuses = imap._untagged_response(typ, data, "STATUS")
        parsed = parse_response([line for line in statuses if line])
        counts = {
            _folder_name(name): pairs(values)
            for name, values in zip(parsed[::2], parsed[1::2], strict=True)
        }
        folders = []
        for flags, delimiter, name in _listed(listed):
            folder = _folder(flags, delimiter, name)
            status = counts.get(folder.name, {})
            folder.messages = int(status.get("messages", 0))
            folder.unseen = int(status.get("unseen", 0))
            folders.append(folder)
        return folders

    def _folders_then_status(self) -> list[Folder]:
        """LIST, then STATUS per folder (Exchange): counts kept briefly, fetched within a budget.

        A folder whose count is not known in time, or whose STATUS is refused, shows no count.
        """
        folders = [
            _folder(flags, as_text(delimiter), name)
            for flags, delimiter, name in self._client.list_folders()
        ]
        now = time.monotonic()
        budget_ends = now + self.server.timeout * STATUS_SHARE_OF_TIMEOUT
        for folder in folders:
            if not folder.selectable:
                continue
            when, messages, unseen = self._counts.get(folder.name, (0.0, None, None))
            if now - when >= STATUS_TTL_SECONDS:
                messages = unseen = None
                if time.monotonic() < budget_ends:
                    messages, unseen = self._status(folder.name)
            folder.messages, folder.unseen = messages, unseen
        return folders

    def _status(self, name: str) -> tuple[int | None, int | None]:
        try:
            status = self._client.folder_status(name, ["MESSAGES", "UNSEEN"])
        except imap_errors.IMAPClientAbortError:
            raise
        except imap_errors.IMAPClientError:
            return None, None  # refused for this folder alone: the others still show
        counts = (status.get(b"MESSAGES", 0), status.get(b"UNSEEN", 0))
        self._counts[name] = (time.monotonic(), *counts)
        return counts

    def _counts_changed(self, *names: str) -> None:
        """Forget kept counts of folders this connection changed, so they are read afresh."""
        for name in names:
            self._counts.pop(name, None)

    def select(self, name: str) -> FolderState:
        """Open folder `name`; if it is already open on this connection, bring it up to date.

        Keeping the folder open and asking for news with NOOP costs a fraction of SELECT, which
        makes the server open the folder again: tens of milliseconds for 100,000 messages.
        """
        check_folder(name)
        if self.selected is not None and self.selected.name == name and not self._synced:
            self._client.noop()
            self._absorb_news()
        if self.selected is not None and self.selected.name == name:
            return self.selected
        return self._select(name)

    def _select(self, name: str) -> FolderState:
        try:
            response = self._client.select_folder(name)
        except imap_errors.IMAPClientAbortError:
            raise
        except imap_errors.IMAPClientError as exc:
            self.selected = None
            refusal = _refusal(str(exc), self.server.host)
            if refusal is not None:
                raise refusal from exc
            raise NotFound(f"There is no folder called “{name}”.") from exc
        self._client._imap.untagged_responses.clear()
        self.selected = FolderState(
            name=name,
            uidvalidity=response.get(b"UIDVALIDITY", 0),
            messages=response.get(b"EXISTS", 0),
        )
        self._synced = True
        return self.selected

    def _absorb_news(self) -> None:
        """Follow what the server said about the open folder (with NOOP, say).

        New messages come as EXISTS with the new count. Expunged ones come as EXPUNGE with
        sequence numbers whose order against EXISTS is lost here, so then the folder is
        forgotten and opened afresh by the next select().
        """
        pending = self._client._imap.untagged_responses
        if self.selected is not None:
            if "EXPUNGE" in pending:
                self.selected = None
            elif "EXISTS" in pending:
                self.selected.messages = int(pending["EXISTS"][-1])
        for kind in ("EXISTS", "EXPUNGE", "RECENT", "FETCH"):
            pending.pop(kind, None)
        self._synced = self.selected is not None

    # Message lists

    def page(self, folder: str, number: int) -> Page:
        """One page of a folder, newest first: only that page's messages are fetched.

        Messages this connection has listed before need only their flags (one small FETCH);
        the rest come with envelopes, sizes and dates.
        """
        state = self.select(folder)
        number = max(1, min(number, pages_for(state.messages)))
        high = state.messages - (number - 1) * PAGE_SIZE
        low = max(1, high - PAGE_SIZE + 1)
        sequence = list(range(high, low - 1, -1)) if high >= 1 else []
        summaries = self._summaries_of(state, sequence, by_uid=False)
        return Page(folder, state.uidvalidity, number, state.messages, summaries)

    def search(self, folder: str, field_name: str, term: str, number: int) -> Page:
        """Messages in `folder` whose sender, subject or text contains `term`, newest first."""
        check_text(term, what="search term")
        key = SEARCH_FIELDS.get(field_name)
        if key is None:
            raise UnsafeInput("Choose to search by sender, subject or text.")
        state = self.select(folder)
        answer = self._client._raw_command_untagged(
            b"SEARCH", [b"CHARSET", b"UTF-8", key.encode(), _search_term(term)]
        )
        uids = sorted(parse_message_list(answer), reverse=True)
        number = max(1, min(number, pages_for(len(uids))))
        chosen = uids[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        summaries = self._summaries_of(state, chosen, by_uid=True)
        return Page(folder, state.uidvalidity, number, len(uids), summaries)

    def _summaries_of(self, state: FolderState, messages: list[int], *, by_uid: bool):
        """Summaries of `messages` (sequence numbers or UIDs) in that order, flags fresh."""
        if not messages:
            return []
        known = (state.name, state.uidvalidity) in self._listed
        response = self._flags(messages, by_uid=by_uid) if known else None
        if response is None:
            response = self._list_fetch(messages, by_uid=by_uid)
        if len(self._summaries) > SUMMARY_CACHE_SIZE:
            self._summaries.clear()
            self._listed.clear()
        self._listed.add((state.name, state.uidvalidity))
        found = []
        for number in messages:
            data = response.get(number)
            if data is None:
                continue  # expunged meanwhile
            uid = number if by_uid else data[b"UID"]
            key = (state.name, state.uidvalidity, uid)
            if b"ENVELOPE" in data:
                self._summaries[key] = _summary(uid, data)
            found.append((key, data.get(b"FLAGS", ())))
        missing = [key[2] for key, _ in found if key not in self._summaries]
        if missing:
            for uid, data in self._list_fetch(missing, by_uid=True).items():
                self._summaries[(state.name, state.uidvalidity, uid)] = _summary(uid, data)
        return [
            replace(self._summaries[key], seen=b"\\Seen" in flags, flagged=b"\\Flagged" in flags)
            for key, flags in found
            if key in self._summaries
        ]

    def _list_fetch(self, messages: list[int], *, by_uid: bool) -> dict[int, dict]:
        """LIST_ITEMS of `messages`, keyed by UID or sequence number as imapclient keys them.

        Read with a parser of our own for this one shape of answer (_parse_list_fetch): on a
        page of 50 envelopes imapclient's general parser took 5 ms, twice ours and twice the
        server's time to answer. Any other shape is asked for again through imapclient.
        """
        imap = self._client._imap
        message_set = ",".join(map(str, messages))
        items = f"({' '.join(LIST_ITEMS)})"
        if by_uid:
            typ, data = imap.uid("FETCH", message_set, items)
        else:
            typ, data = imap.fetch(message_set, items)
        if typ != "OK":
            text = as_text(data[-1])
            raise _refusal(text, self.server.host) or ProtocolError(
                f"The message list could not be read: {text}"
            )
        found = _parse_list_fetch(data, by_uid=by_uid)
        if found is not None:
            return found
        self._client.use_uid = by_uid
        try:
            return self._client.fetch(messages, LIST_ITEMS)
        finally:
            self._client.use_uid = True

    def _flags(self, messages: list[int], *, by_uid: bool) -> dict[int, dict] | None:
        """UID and FLAGS of `messages`, read with a small parser of its own.

        imapclient's general parser took longer than the rest of a page view; this answer has
        one simple shape. Returns None if any line has another, and the caller asks again.
        """
        imap = self._client._imap
        message_set = ",".join(map(str, messages))
        if by_uid:
            typ, data = imap.uid("FETCH", message_set, "(UID FLAGS)")
        else:
            typ, data = imap.fetch(message_set, "(UID FLAGS)")
        if typ != "OK":
            text = as_text(data[-1])
            raise _refusal(text, self.server.host) or ProtocolError(
                f"The message list could not be read: {text}"
            )
        found = {}
        for line in data:
            match = _FLAGS_ANSWER.match(line) if isinstance(line, bytes) else None
            if match is None:
                return None
            uid = int(match.group(2))
            found[uid if by_uid else int(match.group(1))] = {
                b"UID": uid,
                b"FLAGS": tuple(match.group(3).split()),
            }
        return found

    # One message

    def _fetch_one(self, uid: int, items: list[str]) -> dict:
        data = self._client.fetch([uid], items).get(uid)
        if data is None:
            raise NotFound("This message is no longer in this folder.")
        return data

    def message(
        self, folder: str, uid: int, *, text_limit: int, html_limit: int | None = None
    ) -> Message:
        """Read a message's headers and structure, and its text part when it has no HTML.

        With `html_limit`, also read its HTML part and keep it briefly for the body frame's
        request (see html_body). An unread message becomes read by reading its body
        (BODY[] rather than BODY.PEEK[]), so marking it needs no command of its own.
        """
        state = self._open_for_uid(folder)
        data = self._fetch_one(
            uid, ["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE"]
        )
        if not self._synced:
            self._absorb_news()
        envelope = data.get(b"ENVELOPE")
        flags = data.get(b"FLAGS", ())
        subject, substituted = read_header(getattr(envelope, "subject", None))
        message = Message(
            folder=folder,
            uid=uid,
            subject=subject,
            substituted_headers=substituted,
            sender=addresses(getattr(envelope, "from_", None)),
            to=addresses(getattr(envelope, "to", None)),
            cc=addresses(getattr(envelope, "cc", None)),
            reply_to=addresses(getattr(envelope, "reply_to", None)),
            date=aware(getattr(envelope, "date", None)) or aware(data.get(b"INTERNALDATE")),
            size=data.get(b"RFC822.SIZE", 0),
            seen=b"\\Seen" in flags,
            flagged=b"\\Flagged" in flags,
        )
        _arrange(message, data)
        peek = message.seen
        if message.html_part and html_limit is not None:
            html, truncated = self.part_text(message.html_part, uid, html_limit, peek=peek)
            self._keep_body(state, message, html, truncated)
            message.seen = True
        elif message.text_part and not message.html_part:
            message.text, message.text_truncated = self.part_text(
                message.text_part, uid, text_limit, peek=peek
            )
            message.seen = True
        if not peek and message.seen:
            self._counts_changed(folder)
        return message

    def _open_for_uid(self, folder: str) -> FolderState:
        """Open `folder` for commands by UID, without a NOOP when it is open already.

        The server tells of new and expunged messages with a UID FETCH's answer just as with
        NOOP (RFC 3501, 7.4.1), and a UID is found or not whatever the news; the caller takes
        the news in after its FETCH. NOOP costs a Maildir scan of the whole folder.
        """
        check_folder(folder)
        if self.selected is not None and self.selected.name == folder:
            return self.selected
        return self._select(folder)

    def _keep_body(self, state: FolderState, message: Message, html: str, truncated: bool):
        now = time.monotonic()
        for key, (when, *_) in list(self._bodies.items()):
            if now - when >= BODY_KEEP_SECONDS or len(self._bodies) >= BODIES_KEPT:
                del self._bodies[key]
        self._bodies[(state.name, state.uidvalidity, message.uid)] = (
            now,
            message,
            html,
            truncated,
        )

    def html_body(self, folder: str, uid: int, *, limit: int) -> tuple[Message, str, bool]:
        """A message's structure and HTML (at most `limit` bytes read), and whether it was cut.

        The HTML its message page read moments ago on this connection costs no command;
        otherwise (another worker's connection, or kept too long) it is read afresh. The
        HTML is "" when the message has none.
        """
        state = self.selected
        if state is not None and state.name == folder:
            kept = self._bodies.get((folder, state.uidvalidity, uid))
            if kept is not None and time.monotonic() - kept[0] < BODY_KEEP_SECONDS:
                return kept[1], kept[2], kept[3]
        message = self.structure(folder, uid)
        if message.html_part is None:
            return message, "", False
        html, truncated = self.part_text(message.html_part, uid, limit)
        return message, html, truncated

    def part_text(self, part: Part, uid: int, limit: int, *, peek: bool = True) -> tuple[str, bool]:
        """Decode a text part, reading at most `limit` bytes of it (and marking it read
        unless `peek`)."""
        raw = self.part_bytes(part.number, uid, 0, limit, peek=peek)
        text = decode_part(raw, part)
        return text.replace("\r\n", "\n"), part.size > limit

    def part_bytes(
        self, number: str, uid: int, offset: int, length: int, *, peek: bool = True
    ) -> bytes:
        """Raw (still transfer-encoded) bytes of a part, from `offset`, at most `length`."""
        if number:
            check_part(number)
        item = "BODY.PEEK" if peek else "BODY"
        data = self._fetch_one(uid, [f"{item}[{number}]<{offset}.{length}>"])
        return _body_section(data, number, offset)

    def parts_bytes(self, uid: int, lengths: dict[str, int]) -> dict[str, bytes]:
        """Raw bytes of several parts of one message, each at most its length, in one FETCH."""
        if not lengths:
            return {}
        for number in lengths:
            check_part(number)
        data = self._fetch_one(
            uid, [f"BODY.PEEK[{number}]<0.{length}>" for number, length in lengths.items()]
        )
        return {number: _body_section(data, number, 0) for number in lengths}

    def structure(self, folder: str, uid: int) -> Message:
        """Read a message's parts without any body (for the HTML view and downloads)."""
        self.select(folder)
        message = Message(folder=folder, uid=uid)
        _arrange(message, self._fetch_one(uid, ["UID", "BODYSTRUCTURE"]))
        return message

    def stream(self, folder: str, uid: int, number: str, chunk: int) -> Iterator[bytes]:
        """Yield a part (or the whole raw message for number "") in chunks, as stored.

        Each chunk gets its own deadline, so a large download is not cut off by the timeout,
        and the whole download must end within WEBMAIL_DOWNLOAD_TIMEOUT, so a server (or a
        reader) that trickles one chunk per timeout cannot hold the connection for hours.
        """
        limit = settings.WEBMAIL_DOWNLOAD_TIMEOUT
        ends = time.monotonic() + limit
        too_long = f"The download took longer than {limit:g} seconds and was stopped."
        offset = 0
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                self.broken = True  # a FETCH may be half read; the connection is not reused
                raise TimedOut(too_long)
            try:
                with self.deadline(min(self.server.timeout, left)):
                    self.select(folder)
                    data = self.part_bytes(number, uid, offset, chunk)
            except TimedOut as exc:
                if time.monotonic() < ends:
                    raise
                raise TimedOut(too_long) from exc
            if not data:
                return
            yield data
            offset += len(data)
            if len(data) < chunk:
                return

    def neighbour(self, folder: str, uid: int, *, older: bool) -> int | None:
        """The UID listed just after (older) or before (newer) `uid` in `folder`, or None.

        Lists run in arrival order, newest first, so these are the sequence numbers either side.
        """
        self.select(folder)
        sequence = self._fetch_one(uid, ["UID"]).get(b"SEQ")
        wanted = sequence - 1 if older else sequence + 1
        if not sequence or wanted < 1 or wanted > self.selected.messages:
            return None
        self._client.use_uid = False
        try:
            found = self._client.fetch([wanted], ["UID"]).get(wanted, {})
        finally:
            self._client.use_uid = True
        return found.get(b"UID")

    # Changes

    def mark(self, folder: str, uids: list[int], flag: str, on: bool) -> None:
        self.select(folder)
        self._counts_changed(folder)
        imap_flag = {"seen": b"\\Seen", "flagged": b"\\Flagged"}[flag]
        if on:
            self._client.add_flags(uids, [imap_flag], silent=True)
        else:
            self._client.remove_flags(uids, [imap_flag], silent=True)

    def move(self, folder: str, uids: list[int], target: str) -> None:
        check_folder(target)
        self.select(folder)
        if target == folder:
            return
        self._counts_changed(folder, target)
        if self._client.has_capability("MOVE"):
            self._client.move(uids, target)
        else:
            self._require_uidplus()  # before copying, so nothing is left in two places
            self._client.copy(uids, target)
            self._expunge(uids)

    def deletes_for_good(self, folder: str) -> bool:
        """Whether deleting in `folder` is for good: in Trash, or when there is no Trash."""
        if not self._looked_for_trash:
            self.folders()
        return not self.trash or folder == self.trash

    def delete(self, folder: str, uids: list[int]) -> bool:
        """Move to Trash, or delete for good in Trash or when there is none; True if for good."""
        if not self.deletes_for_good(folder):
            self.move(folder, uids, self.trash)
            return False
        self.select(folder)
        self._expunge(uids)
        return True

    def _expunge(self, uids: list[int]) -> None:
        self._require_uidplus()
        if self.selected is not None:
            self._counts_changed(self.selected.name)
        self._client.add_flags(uids, [b"\\Deleted"], silent=True)
        self._client.uid_expunge(uids)

    def _require_uidplus(self) -> None:
        if not self._client.has_capability("UIDPLUS"):
            # A plain EXPUNGE would also remove every other message marked deleted elsewhere.
            raise ProtocolError(
                f"{self.server.host} cannot remove single messages safely (it lacks UIDPLUS), "
                "so Webmail leaves them where they are."
            )

    # Writing mail (webmail.sending): drafts, copies in Sent, answered and forwarded flags

    def special_folder(self, special: str) -> str | None:
        """The folder for `special` (\\Sent, \\Drafts): by the server's flag, else by name."""
        folders = [_folder(*listed) for listed in self._client.list_folders()]
        return next((f.name for f in folders if f.special == special and f.selectable), None)

    def append(self, folder: str, raw: bytes, flags: list[str]) -> int | None:
        """Store a message in `folder`; return its UID when the server says (UIDPLUS)."""
        check_folder(folder)
        answer = self._client.append(folder, raw, flags=[flag.encode() for flag in flags])
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", answer or b"")
        return int(match.group(1)) if match else None

    def raw_message(self, folder: str, uid: int, *, limit: int) -> bytes:
        """A whole message as stored; NotFound if it is gone, MailError if over `limit` bytes."""
        self.select(folder)
        size = self._fetch_one(uid, ["RFC822.SIZE"]).get(b"RFC822.SIZE", 0)
        if size > limit:
            raise MailError(f"This message is larger than {limit // 1024 // 1024} MB.")
        return self._fetch_one(uid, ["BODY.PEEK[]"]).get(b"BODY[]") or b""

    def header_bytes(self, folder: str, uid: int) -> bytes:
        """A message's header section as stored."""
        self.select(folder)
        return self._fetch_one(uid, ["BODY.PEEK[HEADER]"]).get(b"BODY[HEADER]") or b""

    def add_flags(self, folder: str, uids: list[int], flags: list[str]) -> None:
        """Set flags such as \\Answered or $Forwarded."""
        self.select(folder)
        self._client.add_flags(uids, [flag.encode() for flag in flags], silent=True)

    def remove(self, folder: str, uids: list[int]) -> None:
        """Delete messages for good (a sent draft, say), leaving others alone."""
        self.select(folder)
        self._expunge(uids)


def _body_section(data: dict, number: str, offset: int) -> bytes:
    """A FETCH answer's BODY[number]<offset> (some servers leave out the origin when the whole
    part fits)."""
    value = data.get(f"BODY[{number}]<{offset}>".encode())
    if value is None:
        value = data.get(f"BODY[{number}]".encode(), b"")
    return value or b""


def _search_term(term: str) -> bytes:
    """A search term as IMAP must see it: a quoted string, or a literal if not ASCII.

    imapclient leaves a term without spaces or quotes unquoted, so a term like {5} would be
    read by the server as the start of a literal and the connection would hang.
    """
    raw = term.encode()
    if not raw.isascii():
        return raw  # sent as a literal ({n} and the bytes)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
