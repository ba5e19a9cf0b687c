"""What error reports e-mailed to ADMINS may show of a request."""

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
