"""Request ids, one log line per request, the client's address behind trusted proxies, and
pages kept out of caches."""

import logging
import re
import time
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.utils.cache import add_never_cache_headers
from django.utils.encoding import escape_uri_path

logger = logging.getLogger("clientmanager.requests")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_USABLE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Characters that could end a log line or fake one (C0, DEL, C1, Unicode line breaks).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def loggable(text: str) -> str:
    """`text` with control characters (and backslash) written as escapes, for one log line."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the one the outermost trusted proxy received from.

    Each proxy appends the address it received from to X-Forwarded-For, so with
    TRUSTED_PROXY_COUNT proxies the client is that many entries from the end; anything further
    left was written by the client and cannot be trusted.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    return forwarded[-count] if len(forwarded) >= count else remote


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every log record."""

    def filter(self, record):
        record.request_id = _request_id.get()
        return True


class RequestLogMiddleware:
    """Give each request an id (kept from X-Request-ID when sensible) and log one line for it.

    The line holds the method, the path without its query, the status, the time taken, the
    user's id and how many IMAP commands the request sent; never parameters or bodies.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.id = incoming if _USABLE_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(request.id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.id
            user = getattr(request, "_cached_user", None)
            logger.info(
                "%s %s %s %.1fms user=%s ip=%s imap=%d",
                loggable(request.method),
                # As sent on the wire: a decoded %0a or space could fake a line or a field.
                escape_uri_path(request.path),
                response.status_code,
                (time.perf_counter() - started) * 1000,
                user.pk if user is not None and user.is_authenticated else "-",
                loggable(client_ip(request)),
                getattr(request, "imap_commands", 0),
            )
            return response
        finally:
            _request_id.reset(token)


class NeverCacheMiddleware:
    """Keep every page out of browser and proxy caches unless its view chose otherwise.

    Pages show mail and settings, and practice staff share computers: the Back button or a
    shared proxy must not bring them back after sign-out. Static files are served by
    WhiteNoise before this runs and keep their long caching.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
