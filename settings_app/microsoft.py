"""The one door to Microsoft's sign-in service (OAuth 2.0 with msal).

Nothing else imports msal or talks to the authority. Every call has a deadline
(MICROSOFT_TIMEOUT) and every failure of the library, the network or the service becomes one of
the few errors below, which the views explain in plain words. Tokens pass through here but are
never logged: msal's own logger is kept at WARNING in settings.LOGGING.
"""

import functools
import json
import time
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import msal
import msal.exceptions
import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

# Delegated permissions on Exchange Online; msal adds openid, profile and offline_access itself.
SCOPES = [
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
]


class MicrosoftError(Exception):
    """A failure the user is told about in plain words, with an HTTP status for the page."""

    status = 502
    title = "Microsoft sign-in did not work"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SignInRefused(MicrosoftError):
    """The sign-in was cancelled or refused (consent denied, a wrong or reused state, ...)."""

    status = 400
    title = "The Microsoft account was not connected"


class GrantRevoked(MicrosoftError):
    """The refresh token no longer works (`invalid_grant`): the user must connect again."""

    status = 200
    title = "Your Microsoft 365 account needs reconnecting"


class AuthorityUnavailable(MicrosoftError):
    status = 503
    title = "Microsoft's sign-in service cannot be reached"


class AuthorityTimedOut(MicrosoftError):
    status = 504
    title = "Microsoft's sign-in service did not answer in time"


@dataclass
class Tokens:
    """What a sign-in or a refresh gave: keep the refresh token, which replaces the old one."""

    account: str  # the Microsoft account that signed in ("" after a refresh)
    access_token: str
    refresh_token: str
    expires_at: float  # seconds since the epoch

    def __repr__(self):
        return f"Tokens(account={self.account!r}, expires_at={self.expires_at!r})"


def is_configured() -> bool:
    """Whether Microsoft 365 sign-in is offered (a client id is set)."""
    return bool(settings.MICROSOFT_CLIENT_ID)


def allow_sign_in_redirect(response):
    """Let a page's Connect button lead on to the authority: browsers apply the page's CSP
    form-action to where the form's answer redirects, and ours allows only 'self'."""
    parts = urlsplit(settings.MICROSOFT_AUTHORITY)
    policy = {**settings.SECURE_CSP}
    policy["form-action"] = [*policy.get("form-action", []), f"{parts.scheme}://{parts.netloc}"]
    response._csp_config = policy
    return response


def _http_client() -> requests.Session:
    session = requests.Session()
    # REQUESTS_CA_BUNDLE and proxies from the environment would override what is set here.
    session.trust_env = False
    if settings.MICROSOFT_CA_FILE:
        session.verify = settings.MICROSOFT_CA_FILE
    # requests has no session-wide timeout; msal's own documentation suggests this.
    session.request = functools.partial(session.request, timeout=settings.MICROSOFT_TIMEOUT)
    return session


@sensitive_variables("secret")
def _app() -> msal.ConfidentialClientApplication:
    """A fresh msal application: msal caches metadata and error answers per instance, which
    would outlive a fixed authority outage or a test's hooks."""
    secret = settings.MICROSOFT_CLIENT_SECRET
    return msal.ConfidentialClientApplication(
        settings.MICROSOFT_CLIENT_ID,
        client_credential=secret,
        authority=f"{settings.MICROSOFT_AUTHORITY.rstrip('/')}/{settings.MICROSOFT_TENANT}",
        http_client=_http_client(),
        # Instance discovery asks login.microsoftonline.com about the authority; production
        # skips it for that host anyway, and tests point the authority elsewhere.
        instance_discovery=False,
    )


def _call(work):
    """Run `work()`, turning network and library failures into MicrosoftErrors."""
    try:
        return work()
    except requests.Timeout as exc:
        raise AuthorityTimedOut(
            "Microsoft's sign-in service did not answer within "
            f"{settings.MICROSOFT_TIMEOUT:g} seconds. Please try again in a few minutes."
        ) from exc
    except (requests.RequestException, json.JSONDecodeError, msal.exceptions.MsalError) as exc:
        raise AuthorityUnavailable(
            "Microsoft's sign-in service cannot be reached just now. Please try again in a few "
            "minutes."
        ) from exc
    except ValueError as exc:
        # msal raises ValueError when metadata cannot be read, and for a wrong state.
        if "state" in str(exc).lower():
            raise SignInRefused(
                "This sign-in did not start from this browser session, or it was already used. "
                "Nothing was changed; please connect again."
            ) from exc
        raise AuthorityUnavailable(
            "Microsoft's sign-in service gave an answer Webmail could not use. Please try "
            "again in a few minutes."
        ) from exc


def _result(result: dict, *, refreshing: bool) -> Tokens:
    """Tokens from a token answer, or the MicrosoftError it stands for."""
    error = result.get("error")
    if error:
        code = (result.get("error_description") or "").split(":", 1)[0].strip()[:20]
        if error == "invalid_grant" and refreshing:
            raise GrantRevoked(
                "Microsoft no longer accepts this connection (it was revoked, expired, or the "
                f"password was changed; {code or error}). Please connect your account again."
            )
        if error in ("temporarily_unavailable", "server_error"):
            raise AuthorityUnavailable(
                "Microsoft's sign-in service is not available just now. Please try again later."
            )
        raise SignInRefused(
            f"Microsoft refused the sign-in ({code or error}). Please connect again, or ask your "
            "administrator whether the app may read your mail."
        )
    if not result.get("access_token") or not result.get("refresh_token"):
        raise AuthorityUnavailable("Microsoft's sign-in service gave no usable token.")
    claims = result.get("id_token_claims") or {}
    account = claims.get("preferred_username") or claims.get("email") or claims.get("upn") or ""
    return Tokens(
        account=account,
        access_token=result["access_token"],
        refresh_token=result["refresh_token"],
        expires_at=time.time() + int(result.get("expires_in", 0)),
    )


def authorization_start(*, redirect_uri: str, login_hint: str) -> dict:
    """Begin a sign-in: return msal's flow (keep it in the session, encrypted); send the
    browser to flow["auth_uri"]. PKCE (S256), state and nonce are in the flow."""
    with warnings.catch_warnings():
        # msal prefers response_mode=form_post, but a cross-site POST back would arrive
        # without the session cookie (SameSite=Lax), and the state is bound to the session.
        warnings.simplefilter("ignore", UserWarning)
        return _call(
            lambda: _app().initiate_auth_code_flow(
                SCOPES, redirect_uri=redirect_uri, login_hint=login_hint, response_mode="query"
            )
        )


@sensitive_variables("flow", "params", "result")
def authorization_finish(flow: dict, params: dict) -> Tokens:
    """Complete a sign-in with the authority's answer (the callback's query parameters)."""
    error = params.get("error")
    if error:
        if error in ("access_denied", "consent_required", "interaction_required"):
            raise SignInRefused(
                "Signing in with Microsoft was cancelled, or permission for Client Manager to "
                "read your mail was not given. Nothing was changed."
            )
        code = (params.get("error_description") or "").split(":", 1)[0].strip()[:20]
        raise SignInRefused(f"Microsoft refused the sign-in ({code or error[:40]}).")
    if params.get("state") != flow.get("state"):
        raise SignInRefused(
            "This sign-in did not start from this browser session, or it was already used. "
            "Nothing was changed; please connect again."
        )
    result = _call(lambda: _app().acquire_token_by_auth_code_flow(flow, params, scopes=SCOPES))
    return _result(result, refreshing=False)


@sensitive_variables("refresh_token", "result")
def token_refresh(refresh_token: str) -> Tokens:
    """Get a new access token (and a new refresh token, which replaces the old one)."""
    result = _call(lambda: _app().acquire_token_by_refresh_token(refresh_token, SCOPES))
    return _result(result, refreshing=True)
