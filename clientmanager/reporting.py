"""What error reports e-mailed to ADMINS may show of a request."""

import re

from django.views.debug import SafeExceptionReporterFilter

# Request headers and META entries that carry a credential: a session id is a live sign-in
# (for an Automatic user, a live mailbox) and the CSRF secret guards every form.
_CREDENTIAL = re.compile(r"COOKIE|CSRF|SESSION|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.I)


class ReportFilter(SafeExceptionReporterFilter):
    """Django's filter, hiding every cookie, the CSRF secret and the session id wherever they are.

    Django hides the session cookie by name only; the same id also travels in the Cookie header
    under other names, in META's CSRF_COOKIE, and in local variables (the Webmail pool's keys).
    """

    def get_safe_cookies(self, request) -> dict:
        """Every cookie by name, no value: the report never needs one to explain a fault."""
        if not hasattr(request, "COOKIES"):
            return {}
        return dict.fromkeys(request.COOKIES, self.cleansed_substitute)

    def get_safe_request_meta(self, request) -> dict:
        meta = super().get_safe_request_meta(request)
        hidden = self.cleansed_substitute
        return {
            key: hidden if _CREDENTIAL.search(key) else self._scrubbed(request, value)
            for key, value in meta.items()
        }

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self._scrubbed(request, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _scrubbed(self, request, value):
        """`value`, or the substitute if it holds one of the request's cookie values."""
        secrets = [v for v in getattr(request, "COOKIES", {}).values() if len(v) >= 16]
        if not secrets or not self.is_active(request):
            return value
        try:
            text = repr(value)
        except Exception:  # an object whose repr fails shows as Django would show it
            return value
        if any(secret in text for secret in secrets):
            return self.cleansed_substitute
        return value
