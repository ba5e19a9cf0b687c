"""What error reports e-mailed to ADMINS (and logged tracebacks) may show."""

import logging
import re

from django.views.debug import SafeExceptionReporterFilter

# META entries that carry a credential. Django hides HTTP_COOKIE but not CSRF_COOKIE (the
# CSRF secret, copied there by CsrfViewMiddleware) nor headers named like it.
_CREDENTIAL = re.compile(r"COOKIE|CSRF|SESSION|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.I)


class ReportFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding every cookie's value and the CSRF secret.

    A session id is a live sign-in (for an Automatic user, a live mailbox) and the CSRF
    secret guards every form: a report explains a fault with neither.
    """

    def get_safe_cookies(self, request) -> dict:
        if not hasattr(request, "COOKIES"):
            return {}
        return dict.fromkeys(request.COOKIES, self.cleansed_substitute)

    def get_safe_request_meta(self, request) -> dict:
        return {
            key: self.cleansed_substitute if _CREDENTIAL.search(key) else value
            for key, value in super().get_safe_request_meta(request).items()
        }


class NoMailServerFaults(logging.Filter):
    """Keep Webmail's answers about the mail server (502-504, no traceback) out of e-mail.

    They explain a mail server that is down, slow or refusing, which is the mail server's
    operator's news and can come with every page view while it lasts; the request log still
    has each one. Faults in the app itself still reach ADMINS with their tracebacks.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        match = getattr(request, "resolver_match", None)
        return not (
            getattr(record, "status_code", None) in (502, 503, 504)
            and record.exc_info is None
            and match is not None
            and match.app_name == "webmail"
        )


class DropSecretFrames:
    """Let an exception out of the block without the frames below it, nor theirs it came from.

    The mail libraries' frames for signing in (imaplib's LOGIN and AUTHENTICATE, smtplib's
    login and AUTH) hold the password or access token in their variables, out of reach of
    sensitive_variables; an error report shows every frame of an exception and of the
    exceptions it came from. (A class, not @contextmanager, which puts the frames back.)
    """

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        chain = []
        while exc is not None and exc not in chain:
            chain.append(exc.with_traceback(None))
            exc = exc.__cause__ or exc.__context__
        return False
