"""The few errors the views explain, how a server's refusal and a library's failure become
one of them, and the checks that keep unsafe user text from reaching a command."""

import imaplib
import re
import socket
import ssl
from typing import TYPE_CHECKING

from webmail.mime import CONTROL

if TYPE_CHECKING:
    from webmail.imap.connection import Server


class MailError(Exception):
    """A failure the user is told about in plain words, with an HTTP status for the page."""

    status = 502
    title = "The mail server could not be used"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PasswordRejected(MailError):
    status = 200
    title = "The mail server rejected the password"
    source = "form"  # which password: "form", "session" or "saved" (webmail.services sets it)


class TokenRejected(MailError):
    """The server refused an OAuth access token (XOAUTH2): not a password, never counted."""

    status = 403
    title = "The mail server did not accept the Microsoft sign-in"


class TooManyConnections(MailError):
    """The server refused for a limit on connections ([LIMIT], [INUSE]): not the password."""

    status = 503
    title = "Your mailbox has too many open connections"


class TemporarilyUnavailable(MailError):
    """The server cannot serve the mailbox just now ([UNAVAILABLE], Exchange's "not connected")."""

    status = 503
    title = "Your mailbox is not available just now"


class AccountProblem(MailError):
    """The server refused for a reason only an administrator can fix ([CONTACTADMIN], [EXPIRED],
    [PRIVACYREQUIRED]): not the password."""

    status = 403
    title = "The mail server refused to open your mailbox"


class ServerUnreachable(MailError):
    status = 503
    title = "The mail server cannot be reached"


class CertificateProblem(MailError):
    status = 502
    title = "The mail server's certificate could not be trusted"


class TimedOut(MailError):
    status = 504
    title = "The mail server did not answer in time"


class ProtocolError(MailError):
    status = 502
    title = "The mail server gave an answer Webmail did not understand"


class NotFound(MailError):
    status = 404
    title = "Not found"


# RFC 5530 response codes that say why a server refused, when it was not the password.
_LIMIT_CODES = {"LIMIT", "INUSE"}
_UNAVAILABLE_CODES = {"UNAVAILABLE", "SERVERBUG"}
_ADMIN_CODES = {"CONTACTADMIN", "EXPIRED", "PRIVACYREQUIRED"}
# Exchange answers this, with no code, when the mailbox behind a good sign-in cannot be reached.
_EXCHANGE_NOT_CONNECTED = "user is authenticated but not connected"
_CODE = re.compile(r"\[([A-Za-z-]+)[\] ]")
_COMMAND_FAILED = re.compile(r"^[a-z]+ failed: ")  # how imapclient starts its error text
_BYTES_REPR = re.compile(r"^b(['\"])(.*)\1$")  # imaplib sometimes gives the answer as b'...'


def response_code(text: str) -> str:
    """The RFC 5530 code of a server answer ("LIMIT" for "NO [LIMIT] Too many"), or ""."""
    match = _CODE.search(text[:200])
    return match.group(1).upper() if match else ""


def _refusal(text: str, host: str) -> MailError | None:
    """The error a refusal with `text` stands for, if its code says it is not the password."""
    code = response_code(text)
    said = _server_said(text)
    if code in _LIMIT_CODES:
        return TooManyConnections(
            f"Your mailbox has too many open connections to {host} just now (Webmail, phones and "
            "mail programs on computers all count), so the server would not open another. "
            "Your password is not the problem. Please try again in a minute; if this keeps "
            f"happening, close mail programs you no longer use or ask your IT administrator.{said}"
        )
    if code in _UNAVAILABLE_CODES or _EXCHANGE_NOT_CONNECTED in text.lower():
        return TemporarilyUnavailable(
            f"{host} cannot open your mailbox just now. This is usually a passing problem at the "
            f"mail server, not your password: please try again in a few minutes.{said}"
        )
    if code in _ADMIN_CODES:
        return AccountProblem(
            f"{host} refused to open your mailbox for a reason only your IT administrator can "
            "fix (the account may be expired, locked or need a setting changed). Your password "
            f"was not the problem: please ask your IT administrator.{said}"
        )
    return None


def _server_said(text: str) -> str:
    """The server's own words, briefly, for the IT administrator."""
    words = _COMMAND_FAILED.sub("", CONTROL.sub(" ", text).strip())
    words = _BYTES_REPR.sub(r"\2", words)
    if not words:
        return ""
    return f" (The server said: “{words[:200]}”.)"


def _translate(exc: Exception, server: "Server") -> MailError:
    host = server.host
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateProblem(
            f"The certificate of {host} could not be verified ({exc.verify_message}). "
            "Webmail will not send your password to a server it cannot verify; please tell "
            "your IT administrator."
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TimedOut(f"{host} did not answer within {server.timeout:g} seconds.")
    if isinstance(exc, ssl.SSLError):
        return ProtocolError(f"A secure connection to {host} could not be set up ({exc.reason}).")
    if isinstance(exc, socket.gaierror):
        return ServerUnreachable(f"The mail server name {host} could not be found.")
    if isinstance(exc, ConnectionRefusedError):
        return ServerUnreachable(f"{host} refused the connection on port {server.port}.")
    if isinstance(exc, OSError):
        return ServerUnreachable(f"The connection to {host} failed or was dropped.")
    if isinstance(exc, imaplib.IMAP4.error):
        refusal = _refusal(str(exc), host)  # a NO or BYE with a code, for any command
        if refusal is not None:
            return refusal
    if isinstance(exc, imaplib.IMAP4.abort):
        return ProtocolError(f"{host} closed the connection unexpectedly.")
    return ProtocolError(f"{host} answered in a way Webmail did not understand.")


_PART_NUMBER = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,9}$")


class UnsafeInput(ValueError):
    """User text that must not reach an IMAP command (control characters, say)."""


def check_text(value: str, *, what: str, max_length: int = 200) -> str:
    """Return `value` if it may be sent to the server; raise UnsafeInput otherwise."""
    if CONTROL.search(value):
        raise UnsafeInput(f"The {what} cannot contain control characters such as line breaks.")
    if len(value) > max_length:
        raise UnsafeInput(f"The {what} is too long (at most {max_length} characters).")
    return value


def check_folder(name: str) -> str:
    if not name.strip():
        raise UnsafeInput("The folder name is empty.")
    return check_text(name, what="folder name", max_length=500)


def check_part(number: str) -> str:
    if not _PART_NUMBER.match(number):
        raise UnsafeInput("That is not a part of a message.")
    return number
