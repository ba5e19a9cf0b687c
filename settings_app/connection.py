"""A user's connection to their Microsoft 365 account: connecting, refreshing, forgetting.

Tokens are secrets like the email password: kept only encrypted (bound to their owner), in the
profile for Automatic sign-in or in the browser session for Manual, never shown or logged. The
refresh token is replaced by the newest after every refresh, under a lock on the user's profile
row, so two requests refreshing at once never lose it.
"""

import json
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from settings_app import crypto, microsoft
from settings_app.models import AuditEvent, Profile, profile_for
from settings_app.services import RotationResult, audit_record, profile_tokens_rotate

# Access tokens are renewed this many seconds before they expire, so a page never signs in
# with one that runs out halfway.
REFRESH_MARGIN = 300
FLOW_KEY = "microsoft_flow"
SESSION_KEY = "webmail_microsoft"
FLOW_MAX_AGE = 15 * 60


class MicrosoftSignInNeeded(Exception):
    """No usable Microsoft sign-in for this visit: Webmail must ask the user to sign in."""

    reconnect_since = None  # a datetime when an existing connection stopped working


class ReconnectNeeded(MicrosoftSignInNeeded):
    def __init__(self, since):
        super().__init__(
            "Microsoft stopped accepting your connection on "
            f"{timezone.localtime(since):%-d %B %Y at %H:%M}. Please connect your Microsoft 365 "
            "account again in Settings."
        )
        self.reconnect_since = since


@sensitive_variables("tokens")
def _as_dict(tokens: microsoft.Tokens) -> dict:
    return {
        "refresh_token": tokens.refresh_token,
        "access_token": tokens.access_token,
        "expires_at": tokens.expires_at,
    }


# The sign-in round trip -------------------------------------------------------------------------


def _flow_owner(user) -> str:
    return f"microsoft-flow:{user.pk}"


@sensitive_variables("flow")
def sign_in_start(request, *, redirect_uri: str, purpose: str, next_url: str) -> str:
    """Begin signing in with Microsoft for `purpose` ("connect" or "session"); return the
    authority's address to send the browser to. The flow (state, PKCE verifier, nonce) is
    kept encrypted in this browser session, so only this session can finish it."""
    flow = microsoft.authorization_start(redirect_uri=redirect_uri, login_hint=request.user.email)
    kept = {"flow": flow, "purpose": purpose, "next": next_url}
    request.session[FLOW_KEY] = crypto.encrypt(json.dumps(kept), owner=_flow_owner(request.user))
    return flow["auth_uri"]


@sensitive_variables("kept", "params", "tokens")
def sign_in_finish(request, params: dict) -> tuple[str, str]:
    """Finish the round trip with the authority's answer; return (purpose, next address).

    The flow is taken out of the session first, so an answer can be used only once.
    Raises microsoft.MicrosoftError (SignInRefused for a wrong state, a cancelled sign-in or
    another account than the contact email).
    """
    token = request.session.pop(FLOW_KEY, None)
    try:
        kept = json.loads(
            crypto.decrypt(token or "", owner=_flow_owner(request.user), max_age=FLOW_MAX_AGE)
        )
    except crypto.DecryptionError:
        kept = None
    if kept is None:
        raise microsoft.SignInRefused(
            "This sign-in did not start from this browser session, took too long, or was "
            "already used. Nothing was changed; please connect again."
        )
    tokens = microsoft.authorization_finish(kept["flow"], params)
    expected = (request.user.email or "").strip().lower()
    if tokens.account.strip().lower() != expected:
        raise microsoft.SignInRefused(
            f"You signed in to Microsoft as {tokens.account or 'an unknown account'}, but your "
            f"contact email is {request.user.email or 'not set'}. Sign in with that account, or "
            "change your email address in Settings first. Nothing was changed."
        )
    if kept["purpose"] == "session":
        session_store(request, tokens)
    else:
        connect(user=request.user, tokens=tokens)
    return kept["purpose"], kept["next"]


# Automatic: the connection kept in the profile ------------------------------------------------


@sensitive_variables("tokens")
def connect(*, user, tokens: microsoft.Tokens) -> None:
    """Keep a new connection for `user` and sign Webmail in with it from now on."""
    profile_for(user)
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(user=user)
        again = bool(profile.microsoft_token)
        before = profile.email_sign_in
        profile.set_microsoft_tokens(_as_dict(tokens))
        profile.microsoft_account = tokens.account
        profile.email_sign_in = Profile.EmailSignIn.MICROSOFT
        profile.save()
        action = AuditEvent.Action.MICROSOFT_RECONNECTED if again else None
        audit_record(
            actor=user,
            subject=user,
            action=action or AuditEvent.Action.MICROSOFT_CONNECTED,
            source=AuditEvent.Source.SETTINGS,
            detail=tokens.account[:200],
        )
        if before != profile.email_sign_in:
            audit_sign_in_change(
                actor=user, subject=user, before=before, after=profile.email_sign_in
            )


def audit_sign_in_change(*, actor, subject, before: str, after: str, source: str = "") -> None:
    labels = dict(Profile.EmailSignIn.choices)
    audit_record(
        actor=actor,
        subject=subject,
        action=AuditEvent.Action.SIGN_IN_CHANGED,
        source=source or AuditEvent.Source.SETTINGS,
        detail=f"{labels[before]} → {labels[after]}",
    )


def disconnect(*, actor, subject, source: str) -> bool:
    """Forget `subject`'s Microsoft connection; return whether there was one."""
    profile_for(subject)
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(user=subject)
        if not profile.microsoft_token:
            return False
        account = profile.microsoft_account
        profile.clear_microsoft()
        profile.save(update_fields=["microsoft_token", "microsoft_account", "microsoft_failed_at"])
        audit_record(
            actor=actor,
            subject=subject,
            action=AuditEvent.Action.MICROSOFT_DISCONNECTED,
            source=source,
            detail=account[:200],
        )
    return True


@sensitive_variables("tokens", "fresh")
def _saved_access_token(user) -> str:
    """The profile's access token, refreshed under a row lock when it is (nearly) expired."""
    revoked = None
    with transaction.atomic():
        # Others refreshing at the same moment wait here, then find the token fresh.
        profile = Profile.objects.select_for_update().get(user=user)
        if not profile.microsoft_token:
            raise MicrosoftSignInNeeded(
                "Connect your Microsoft 365 account in Settings to open Webmail."
            )
        if profile.microsoft_failed_at is not None:
            raise ReconnectNeeded(profile.microsoft_failed_at)
        try:
            tokens = profile.get_microsoft_tokens()
        except crypto.DecryptionError:
            raise MicrosoftSignInNeeded(
                "Your Microsoft 365 connection can no longer be read. Please connect your "
                "account again in Settings."
            ) from None
        if tokens["expires_at"] - REFRESH_MARGIN > time.time():
            return tokens["access_token"]
        try:
            fresh = microsoft.token_refresh(tokens["refresh_token"])
        except microsoft.GrantRevoked as exc:
            revoked = exc
            profile.microsoft_failed_at = timezone.now()
            profile.save(update_fields=["microsoft_failed_at"])
            audit_record(
                actor=None,
                subject=user,
                action=AuditEvent.Action.MICROSOFT_FAILED,
                source=AuditEvent.Source.SETTINGS,
                detail=exc.message[:200],
            )
        else:
            profile.set_microsoft_tokens(_as_dict(fresh))
            profile.save(update_fields=["microsoft_token", "microsoft_failed_at"])
            return fresh.access_token
    # Outside the transaction, so the mark and the audit entry are kept.
    raise ReconnectNeeded(profile.microsoft_failed_at) from revoked


def access_token_forget(request, profile: Profile) -> None:
    """Make the next sign-in refresh first (the mail server refused the current token)."""
    if request.session.pop(SESSION_KEY, None) is not None:
        return
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(pk=profile.pk)
        try:
            tokens = profile.get_microsoft_tokens()
        except crypto.DecryptionError:
            return
        tokens["expires_at"] = 0
        profile.set_microsoft_tokens(tokens)
        profile.save(update_fields=["microsoft_token", "microsoft_failed_at"])


# Manual: a sign-in kept for this browser session only -----------------------------------------


def _session_owner(user) -> str:
    return f"webmail-session-microsoft:{user.pk}"


@sensitive_variables("tokens")
def session_store(request, tokens: microsoft.Tokens) -> None:
    request.session[SESSION_KEY] = crypto.encrypt(
        json.dumps(_as_dict(tokens)), owner=_session_owner(request.user)
    )


@sensitive_variables("token")
def _session_tokens(request, token: str) -> dict | None:
    try:
        return json.loads(
            crypto.decrypt(
                token, owner=_session_owner(request.user), max_age=settings.SESSION_COOKIE_AGE
            )
        )
    except crypto.DecryptionError:
        return None


@sensitive_variables("token", "tokens", "fresh", "stored")
def _session_access_token(request) -> str | None:
    token = request.session.get(SESSION_KEY)
    tokens = _session_tokens(request, token) if token else None
    if tokens is None:
        request.session.pop(SESSION_KEY, None)
        return None
    if tokens["expires_at"] - REFRESH_MARGIN > time.time():
        return tokens["access_token"]
    with transaction.atomic():
        # The user's profile row serialises refreshes; a request of the same session that
        # refreshed while this one waited has saved the newest tokens in the stored session.
        list(Profile.objects.select_for_update().filter(user=request.user).values("pk"))
        stored = request.session.__class__(request.session.session_key).load().get(SESSION_KEY)
        newer = _session_tokens(request, stored) if stored and stored != token else None
        if newer and newer["expires_at"] - REFRESH_MARGIN > time.time():
            request.session[SESSION_KEY] = stored
            return newer["access_token"]
        try:
            fresh = microsoft.token_refresh(tokens["refresh_token"])
        except microsoft.GrantRevoked:
            request.session.pop(SESSION_KEY, None)
            return None
        session_store(request, fresh)
        request.session.save()  # before the lock is released, for the request waiting on it
    return fresh.access_token


@sensitive_variables()
def access_token(request, profile: Profile) -> str:
    """The access token this visit signs in with: this session's (Manual), else the saved
    connection's if Webmail access is Automatic. Raises MicrosoftSignInNeeded (ReconnectNeeded)
    or a microsoft.MicrosoftError when the authority cannot be used."""
    session_token = _session_access_token(request)
    if session_token:
        return session_token
    if profile.signs_in_automatically:
        return _saved_access_token(request.user)
    raise MicrosoftSignInNeeded("Sign in with your Microsoft 365 account to open Webmail.")


def session_drop(request) -> None:
    request.session.pop(SESSION_KEY, None)


# Key rotation ----------------------------------------------------------------------------------


def tokens_rotate(*, batch_size: int = 500) -> RotationResult:
    """Re-encrypt every kept Microsoft connection under the first key (like the passwords)."""
    return profile_tokens_rotate(
        field="microsoft_token",
        action=AuditEvent.Action.MICROSOFT_ROTATED,
        batch_size=batch_size,
    )
