"""A stand-in for Microsoft's sign-in service (Entra ID), on loopback, for tests and the demo.

It speaks the parts of OAuth 2.0 and OpenID Connect that Client Manager uses, shaped like Entra's
answers: the OpenID metadata, an authorize page that signs a test account in (or cancels), a
token endpoint with PKCE (S256) and rotating refresh tokens, and an introspection endpoint that
Dovecot's oauth2 passdb asks whether an access token is good. Hooks let tests revoke grants,
expire access tokens and make the service fail or hang.

The OAuth endpoints are served over HTTPS (msal insists) with a throwaway CA; introspection is
plain HTTP on loopback, for Dovecot.
"""

import base64
import hashlib
import html
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt

from devtools.certs import make_certificates
from devtools.dovecot import free_port

SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send"
TENANT_ID = "00000000-0000-4000-8000-00000000cafe"
DOVECOT_CLIENT = ("dovecot", "dovecot-secret")

SIGN_IN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><main>
<h1>Sign in to your account</h1>
<p>Test stand-in for Microsoft's sign-in page. <strong>{client}</strong> asks to read and send
your mail.</p>
<form method="post">
{hidden}
<label for="account">Account</label>
<input id="account" name="account" type="email" value="{account}">
<button name="action" value="accept">Accept</button>
<button name="action" value="cancel">Cancel</button>
</form>
</main></body></html>
"""


@dataclass
class Grant:
    account: str
    refresh_token: str
    access_tokens: dict[str, float] = field(default_factory=dict)  # token: expires at


class IdentityProvider:
    """A stand-in Entra ID on 127.0.0.1 (HTTPS on `port`, introspection over HTTP)."""

    def __init__(self, root: Path, *, tenant: str = "organizations"):
        self.root = Path(root)
        self.tenant = tenant
        self.port = free_port()
        self.introspection_port = free_port()
        self.client_id = "clientmanager-test"
        self.client_secret = secrets.token_urlsafe(24)
        self.redirect_uris: set[str] = set()  # empty: any redirect URI is accepted
        # Hooks for tests.
        self.access_lifetime = 3600
        self.sign_in_as: str | None = None  # the account the page signs in, else login_hint
        self.failing: int | None = None  # answer every OAuth request with this HTTP status
        self.delay = 0.0  # seconds to wait before answering OAuth requests
        self.token_requests: list[str] = []  # grant types asked for, in order
        self._lock = threading.Lock()
        self._codes: dict[str, dict] = {}
        self._grants: list[Grant] = []
        self._servers: list[ThreadingHTTPServer] = []

    # Addresses

    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.introspection_port}/introspect"

    def _endpoint(self, name: str) -> str:
        return f"{self.authority}/{self.tenant}/oauth2/v2.0/{name}"

    # Running

    def start(self) -> "IdentityProvider":
        if not self.ca_file.exists():
            make_certificates(self.root / "tls", host_names=("localhost",))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.root / "tls" / "cert.pem", self.root / "tls" / "key.pem")
        oauth = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self, "oauth"))
        oauth.socket = context.wrap_socket(oauth.socket, server_side=True)
        introspection = ThreadingHTTPServer(
            ("127.0.0.1", self.introspection_port), _handler(self, "introspection")
        )
        for server in (oauth, introspection):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def reset(self) -> None:
        """Forget every grant and undo every hook."""
        with self._lock:
            self._codes.clear()
            self._grants.clear()
        self.access_lifetime = 3600
        self.sign_in_as = None
        self.failing = None
        self.delay = 0.0
        self.token_requests = []

    # Hooks

    def revoke(self, account: str) -> None:
        """Withdraw every grant of `account` (as an admin revoking sessions would)."""
        with self._lock:
            self._grants = [g for g in self._grants if g.account.lower() != account.lower()]

    def expire_access_tokens(self) -> None:
        with self._lock:
            for grant in self._grants:
                grant.access_tokens = dict.fromkeys(grant.access_tokens, 0.0)

    def approve(self, authorize_url: str, *, cancel: bool = False) -> str:
        """Press Accept (or Cancel) on the sign-in page of `authorize_url`, as a browser would,
        and return the address the page sends the browser back to."""
        import http.client

        parts = urlsplit(authorize_url)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context)
        form = dict(parse_qsl(parts.query))
        form["action"] = "cancel" if cancel else "accept"
        form.setdefault("account", self.sign_in_as or form.get("login_hint", ""))
        connection.request(
            "POST",
            f"{parts.path}?{parts.query}",
            body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        location = response.getheader("Location")
        connection.close()
        if response.status != 302 or not location:
            raise RuntimeError(f"The sign-in page answered {response.status}, not a redirect.")
        return location

    def active_accounts(self) -> list[str]:
        with self._lock:
            return [grant.account for grant in self._grants]

    # Protocol

    def metadata(self) -> dict:
        issuer = f"{self.authority}/{TENANT_ID}/v2.0"
        return {
            "issuer": issuer,
            "authorization_endpoint": self._endpoint("authorize"),
            "token_endpoint": self._endpoint("token"),
            "jwks_uri": f"{self.authority}/{self.tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }

    def authorize(self, params: dict) -> tuple[int, dict]:
        """Check an authorize request; return (status, redirect query or error)."""
        if params.get("client_id") != self.client_id:
            return 400, {"error": "unauthorized_client"}
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return 400, {"error": "invalid_request"}
        if not params.get("code_challenge") or not params.get("redirect_uri"):
            return 400, {"error": "invalid_request"}
        if self.redirect_uris and params["redirect_uri"] not in self.redirect_uris:
            return 400, {"error": "invalid_request", "error_description": "AADSTS50011"}
        return 200, {}

    def decide(self, params: dict) -> str:
        """The redirect after the user accepted or cancelled on the sign-in page."""
        answer = {"state": params.get("state", "")}
        if params.get("action") != "accept":
            answer.update(
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
            )
        else:
            code = secrets.token_urlsafe(32)
            with self._lock:
                self._codes[code] = {
                    "account": self.sign_in_as or params.get("account", ""),
                    "challenge": params["code_challenge"],
                    "redirect_uri": params["redirect_uri"],
                    "nonce": params.get("nonce"),
                    "scope": params.get("scope", ""),
                }
            answer["code"] = code
        return f"{params['redirect_uri']}?{urlencode(answer)}"

    def token(self, form: dict) -> tuple[int, dict]:
        self.token_requests.append(form.get("grant_type", ""))
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return 401, _error("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if form.get("grant_type") == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None or code["redirect_uri"] != form.get("redirect_uri"):
                return 400, _error("invalid_grant", "AADSTS70008: The code has expired or is used.")
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if challenge != code["challenge"]:
                return 400, _error("invalid_grant", "AADSTS501481: The code verifier is wrong.")
            with self._lock:
                grant = Grant(code["account"], secrets.token_urlsafe(48))
                self._grants.append(grant)
            return 200, self._issue(grant, nonce=code["nonce"], id_token=True)
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                grant = next(
                    (g for g in self._grants if g.refresh_token == form.get("refresh_token")), None
                )
                if grant is None:
                    return 400, _error(
                        "invalid_grant",
                        "AADSTS700082: The refresh token has expired or was revoked.",
                    )
                grant.refresh_token = secrets.token_urlsafe(48)  # rotation: the old one is spent
            return 200, self._issue(grant, nonce=None, id_token="openid" in form.get("scope", ""))
        return 400, _error("unsupported_grant_type", "AADSTS70003")

    def _issue(self, grant: Grant, *, nonce: str | None, id_token: bool) -> dict:
        access_token = "at-" + secrets.token_urlsafe(48)
        with self._lock:
            grant.access_tokens[access_token] = time.time() + self.access_lifetime
        answer = {
            "token_type": "Bearer",
            "scope": SCOPE,
            "expires_in": self.access_lifetime,
            "ext_expires_in": self.access_lifetime,
            "access_token": access_token,
            "refresh_token": grant.refresh_token,
            "client_info": _b64({"uid": _oid(grant.account), "utid": TENANT_ID}),
        }
        if id_token:
            now = int(time.time())
            claims = {
                "iss": f"{self.authority}/{TENANT_ID}/v2.0",
                "aud": self.client_id,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "oid": _oid(grant.account),
                "sub": _oid(grant.account),
                "tid": TENANT_ID,
                "preferred_username": grant.account,
                "name": grant.account.split("@")[0].title(),
            }
            if nonce:
                claims["nonce"] = nonce
            answer["id_token"] = jwt.encode(claims, self.client_secret, algorithm="HS256")
        return answer

    def introspect(self, form: dict) -> dict:
        if (form.get("client_id"), form.get("client_secret")) != DOVECOT_CLIENT:
            return {"active": False}
        token = form.get("token", "")
        with self._lock:
            for grant in self._grants:
                expires_at = grant.access_tokens.get(token)
                if expires_at is not None and expires_at > time.time():
                    return {
                        "active": True,
                        "username": grant.account,
                        "scope": SCOPE,
                        "token_type": "Bearer",
                    }
        return {"active": False}


def _error(code: str, description: str) -> dict:
    return {"error": code, "error_description": description, "error_codes": [0]}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _oid(account: str) -> str:
    return hashlib.sha256(account.lower().encode()).hexdigest()[:32]


def _handler(provider: IdentityProvider, role: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # tests read answers, not a log
            pass

        def _form(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(parse_qsl(self.rfile.read(length).decode()))

        def _send(self, status: int, body: str, content_type: str, headers=()) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, data: dict) -> None:
            self._send(status, json.dumps(data), "application/json")

        def _hooks(self) -> bool:
            """Apply the delay and failure hooks; True when the request was answered."""
            if provider.delay:
                time.sleep(provider.delay)
            if provider.failing:
                self._send(provider.failing, "<html>Service unavailable</html>", "text/html")
                return True
            return False

        def do_GET(self):
            parts = urlsplit(self.path)
            if role != "oauth" or self._hooks():
                return self._send(404, "", "text/plain") if role != "oauth" else None
            tenant = provider.tenant
            if parts.path == f"/{tenant}/v2.0/.well-known/openid-configuration":
                return self._json(200, provider.metadata())
            if parts.path == f"/{tenant}/discovery/v2.0/keys":
                return self._json(200, {"keys": []})
            if parts.path == f"/{tenant}/oauth2/v2.0/authorize":
                params = dict(parse_qsl(parts.query))
                status, problem = provider.authorize(params)
                if status != 200:
                    return self._json(status, problem)
                hidden = "\n".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                    for k, v in params.items()
                )
                page = SIGN_IN_PAGE.format(
                    client=html.escape(provider.client_id),
                    hidden=hidden,
                    account=html.escape(provider.sign_in_as or params.get("login_hint", "")),
                )
                return self._send(200, page, "text/html; charset=utf-8")
            return self._send(404, "", "text/plain")

        def do_POST(self):
            parts = urlsplit(self.path)
            form = self._form()
            if role == "introspection":
                if parts.path != "/introspect":
                    return self._send(404, "", "text/plain")
                if provider.failing:
                    return self._send(500, "<html>Down</html>", "text/html")
                return self._json(200, provider.introspect(form))
            if self._hooks():
                return None
            tenant = provider.tenant
            if parts.path == f"/{tenant}/oauth2/v2.0/token":
                status, answer = provider.token(form)
                return self._json(status, answer)
            if parts.path == f"/{tenant}/oauth2/v2.0/authorize":
                status, problem = provider.authorize(form)
                if status != 200:
                    return self._json(status, problem)
                return self._send(302, "", "text/plain", [("Location", provider.decide(form))])
            return self._send(404, "", "text/plain")

    return Handler
