"""The one door to SMTP submission: nothing else imports smtplib.

Connections always use TLS (implicit, or STARTTLS that the server must offer) with verified
certificates and host names, and an explicit timeout for every answer. Server answers are read
by their enhanced status codes (RFC 3463) and turned into a few errors the views explain.
"""

import base64
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from clientmanager.reporting import DropSecretFrames
from webmail.imap import MICROSOFT_HOSTS, REJECTION_DELAY_ALLOWANCE, _ssl_context

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


# Errors ---------------------------------------------------------------------------------------


class SendError(Exception):
    """Sending failed; `message` says why in plain words. Nothing was sent."""

    title = "The message could not be sent"

    def __init__(self, message: str, *, reply: str = ""):
        super().__init__(message)
        self.message = message
        self.reply = reply  # the server's own words, for operators


class PasswordNotAllowed(SendError):
    """Microsoft's 5.7.30 / 5.7.139: the organisation turned off sending with a password."""

    title = "Your organisation does not allow sending with a password"


class SignInRefused(SendError):
    title = "The mail server did not accept your sign-in for sending"


class TokenRefused(SignInRefused):
    """The Microsoft access token was refused: the next sign-in must get a fresh one."""

    title = "Your Microsoft 365 sign-in was not accepted for sending"


class SubmissionDisabled(SendError):
    """Microsoft's 5.7.139 to a token: SMTP AUTH is off for the mailbox or the tenant."""

    title = "Your organisation does not allow sending from Webmail"


class TooManySends(SendError):
    """4.3.2 and similar: the mailbox is sending too much at once; trying later works."""

    title = "Your mailbox is sending too many messages at once"


class TooLarge(SendError):
    title = "The message is too large"


class SenderRefused(SendError):
    title = "The mail server does not let you send from this address"


class RecipientsRefused(SendError):
    """Every recipient was refused: nobody got the message."""

    title = "No recipient was accepted"

    def __init__(self, message: str, *, refused: dict[str, str]):
        super().__init__(message)
        self.refused = refused


class Unreachable(SendError):
    title = "The mail server for sending cannot be reached"


class TimedOut(SendError):
    title = "The mail server for sending did not answer in time"


class CertificateProblem(SendError):
    title = "The mail server's certificate could not be trusted"


class Refused(SendError):
    """Any other refusal (temporary or not), with the server's own words."""


# Configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # "starttls" or "ssl"
    ca_file: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "SmtpServer":
        return cls(
            host=settings.WEBMAIL_SMTP_HOST,
            port=settings.WEBMAIL_SMTP_PORT,
            security=settings.WEBMAIL_SMTP_SECURITY,
            ca_file=settings.WEBMAIL_SMTP_CA_FILE,
            timeout=settings.WEBMAIL_SMTP_TIMEOUT,
        )

    @property
    def is_microsoft(self) -> bool:
        host = self.host.lower().rstrip(".")
        return any(host == name or host.endswith("." + name) for name in MICROSOFT_HOSTS)


@dataclass
class Login:
    """Who signs in for sending: a password, or an OAuth access token for XOAUTH2."""

    username: str
    password: str = ""
    access_token: str = ""

    def __repr__(self):
        return f"Login(username={self.username!r})"


# Sending --------------------------------------------------------------------------------------


@sensitive_variables("login", "password", "token")
def submit(
    server: SmtpServer, login: Login, *, sender: str, recipients: list[str], raw: bytes
) -> dict[str, str]:
    """Send `raw` from `sender` to `recipients`; return the refused ones (address → why).

    Raises a SendError when nobody got the message. The server's advertised SIZE is checked
    before the message is uploaded.
    """
    try:
        client = _connect(server)
    except OSError as exc:
        raise _connection_error(exc, server) from exc
    try:
        with client:
            _sign_in(client, server, login)
            limit = int(client.esmtp_features.get("size", "0") or 0)
            if limit and len(raw) > limit:
                raise TooLarge(
                    f"The message is {_megabytes(len(raw))}, and {server.host} accepts at most "
                    f"{_megabytes(limit)}. Remove an attachment or send it as a link."
                )
            options = [f"SIZE={len(raw)}"] if limit else []
            if "smtputf8" in client.esmtp_features and not raw.isascii():
                options.append("SMTPUTF8")
            return _explain_refused(client.sendmail(sender, recipients, raw, options), server)
    except SendError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        refused = _explain_refused(exc.recipients, server)
        raise RecipientsRefused(
            "The mail server refused every recipient: "
            + "; ".join(f"{who} ({why})" for who, why in refused.items()),
            refused=refused,
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error, server) from exc
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPException, OSError) as exc:
        raise _connection_error(exc, server) from exc


def _connect(server: SmtpServer) -> smtplib.SMTP:
    context = _ssl_context(server.ca_file)
    if server.security == "ssl":
        return smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=context)
    client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
    try:
        client.ehlo()
        if not client.has_extn("starttls"):
            raise Refused(
                f"{server.host} does not offer STARTTLS, so the connection cannot be encrypted. "
                "Webmail never sends a password or a message unencrypted."
            )
        client.starttls(context=context)
    except BaseException:
        client.close()
        raise
    return client


@sensitive_variables("login")
def _sign_in(client: smtplib.SMTP, server: SmtpServer, login: Login) -> None:
    client.ehlo()
    # The answer to a password may be held back (see REJECTION_DELAY_ALLOWANCE): read it late
    # rather than take a slow "no" for a server that hangs.
    client.sock.settimeout(server.timeout + REJECTION_DELAY_ALLOWANCE)
    try:
        _authenticate(client, server, login)
    finally:
        if client.sock is not None:  # None once smtplib has closed a failed connection
            client.sock.settimeout(server.timeout)


@sensitive_variables("login", "token")
def _authenticate(client: smtplib.SMTP, server: SmtpServer, login: Login) -> None:
    if login.access_token:
        token = f"user={login.username}\x01auth=Bearer {login.access_token}\x01\x01"
        with DropSecretFrames():
            code, reply = client.docmd(
                "AUTH", "XOAUTH2 " + base64.b64encode(token.encode()).decode()
            )
        if code == 334:  # the server's error details come as a challenge; finish the exchange
            code, reply = client.docmd("")
        if code != 235:
            raise _token_refusal(code, reply, server)
        return
    with DropSecretFrames():
        client.login(login.username, login.password)


def _explain_refused(refused: dict, server: SmtpServer) -> dict[str, str]:
    return {
        address: _refusal(code, reply, server).message for address, (code, reply) in refused.items()
    }


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def enhanced_code(reply) -> str:
    """The enhanced status code (RFC 3463) at the start of a reply, or ""."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    match = _ENHANCED.match(text)
    return match.group(1) if match else ""


def _refusal(code: int, reply, server: SmtpServer) -> SendError:
    """Turn an SMTP reply into the error that says what it means for the user."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    said = f"{code} {text}".strip()
    enhanced = enhanced_code(text)
    if enhanced in ("5.7.30", "5.7.139"):
        return PasswordNotAllowed(
            "Your organisation does not allow sending mail with a password. Connect your "
            "Microsoft account in Settings to send from Webmail. Your password itself was not "
            "rejected.",
            reply=said,
        )
    if enhanced == "4.3.2" or (code == 421 and "limit" in text.lower()):
        return TooManySends(
            "Your mailbox is sending too many messages at the same moment. Wait a minute and "
            "send again.",
            reply=said,
        )
    if enhanced == "5.3.4" or code == 552:
        return TooLarge(
            f"{server.host} refused the message because it is too large. Remove an attachment "
            "or send it as a link.",
            reply=said,
        )
    if code in (530, 534, 535, 538) or enhanced in ("5.7.8", "5.7.3", "5.7.0"):
        hint = (
            " Microsoft also gives this answer when sending with a password is turned off for "
            "your mailbox."
            if server.is_microsoft
            else ""
        )
        return SignInRefused(
            f"{server.host} did not accept your email password for sending.{hint}", reply=said
        )
    if enhanced.startswith("5.1.") or (code in (550, 551, 553) and "recipient" in text.lower()):
        return Refused(f"the mail server refused this address ({_short(text)})", reply=said)
    if enhanced == "5.7.1" or code == 553:
        return SenderRefused(
            f"{server.host} does not let you send from your address: {_short(text)}", reply=said
        )
    if 400 <= code < 500:
        return Refused(
            f"{server.host} could not take the message just now ({_short(text)}). Try again "
            "in a few minutes.",
            reply=said,
        )
    return Refused(f"{server.host} refused the message: {_short(text)}", reply=said)


def _token_refusal(code: int, reply, server: SmtpServer) -> SendError:
    """Turn a refused XOAUTH2 sign-in into what it means: never "wrong password"."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    said = f"{code} {text}".strip()
    if enhanced_code(text) == "5.7.139":
        return SubmissionDisabled(
            "Your organisation has turned off sending from mail programs (SMTP AUTH) for your "
            "mailbox, so Webmail cannot send for you even with your Microsoft 365 account. "
            "Please ask your IT administrator to allow authenticated SMTP for your mailbox.",
            reply=said,
        )
    if 400 <= code < 500:
        return Refused(
            f"{server.host} could not check your Microsoft 365 sign-in just now. Try again in "
            "a few minutes.",
            reply=said,
        )
    return TokenRefused(
        f"{server.host} did not accept your Microsoft 365 sign-in for sending. Send again: "
        "Webmail gets a fresh sign-in from Microsoft first. If it is refused again, connect "
        "your Microsoft 365 account again in Settings.",
        reply=said,
    )


def _short(text: str) -> str:
    """The server's words without its codes, on one line and not too long."""
    text = " ".join(text.split())
    text = _ENHANCED.sub("", text).strip()
    return text[:200] or "no reason given"


def _connection_error(exc: BaseException, server: SmtpServer) -> SendError:
    host = server.host
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateProblem(
            f"The certificate of {host} could not be verified ({exc.verify_message}). Webmail "
            "will not send your password or mail to a server it cannot verify; please tell your "
            "IT administrator."
        )
    if _timed_out(exc):
        return TimedOut(f"{host} did not answer within {server.timeout:g} seconds.")
    if isinstance(exc, ssl.SSLError):
        return Refused(f"A secure connection to {host} could not be set up ({exc.reason}).")
    if isinstance(exc, socket.gaierror):
        return Unreachable(f"The mail server name {host} could not be found.")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(f"{host} refused the connection on port {server.port}.")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Refused(f"{host} does not offer a way to sign in that Webmail can use.")
    return Unreachable(f"The connection to {host} failed or was dropped.")


def _timed_out(exc: BaseException | None) -> bool:
    """Whether a timeout is behind `exc` (smtplib reports one as a lost connection)."""
    while exc is not None:
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
