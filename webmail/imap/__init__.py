"""The one door to IMAP: connections, commands and the few errors the views explain.

Nothing else imports imapclient. Connections always use TLS (implicit, or STARTTLS that the
server must offer) with verified certificates and host names. Each piece of work runs under a
deadline: a watchdog shuts the socket when it passes, so a server that hangs or drips bytes
cannot hold a request longer than the configured timeout.

Split by concern: errors.py (the errors, and checks on user text), connection.py (settings,
TLS and the deadline watchdog), data.py (what the views are handed), parsing.py (reading the
server's answers) and mailbox.py (the signed-in connection and its commands). This module
names what the rest of Webmail and the tests use.
"""

from imapclient import IMAPClient

from webmail.imap.connection import (
    _TLS,
    MICROSOFT_HOSTS,
    REJECTION_DELAY_ALLOWANCE,
    Server,
    _Guard,
    _ssl_context,
)
from webmail.imap.data import PAGE_SIZE, Folder, Page
from webmail.imap.errors import (
    MailError,
    NotFound,
    PasswordRejected,
    ServerUnreachable,
    TimedOut,
    TokenRejected,
    TooManyConnections,
    UnsafeInput,
    check_part,
    check_text,
    response_code,
)
from webmail.imap.mailbox import Mailbox
from webmail.imap.parsing import _folder, _name_special_uses, _parse_list_fetch

__all__ = [
    "MICROSOFT_HOSTS",
    "PAGE_SIZE",
    "REJECTION_DELAY_ALLOWANCE",
    "_TLS",
    "Folder",
    "IMAPClient",
    "MailError",
    "Mailbox",
    "NotFound",
    "Page",
    "PasswordRejected",
    "Server",
    "ServerUnreachable",
    "TimedOut",
    "TokenRejected",
    "TooManyConnections",
    "UnsafeInput",
    "_Guard",
    "_folder",
    "_name_special_uses",
    "_parse_list_fetch",
    "_ssl_context",
    "check_part",
    "check_text",
    "response_code",
]
