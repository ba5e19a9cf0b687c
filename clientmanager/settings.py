"""Settings for Client Manager, read from the environment (and a `.env` file if present).

Every variable is documented in `.env.example`. Problems with them are reported by system checks
(settings_app.checks), not here, so that a bad value gives a clear message rather than a traceback.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# Fernet keys for secrets at rest: the first encrypts, all of them decrypt.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
ENCRYPTION_KEYS_FILE = env.str("ENCRYPTION_KEYS_FILE", default="")
if ENCRYPTION_KEYS_FILE and not ENCRYPTION_KEYS:
    try:
        ENCRYPTION_KEYS = Path(ENCRYPTION_KEYS_FILE).read_text().replace(",", "\n").split()
    except OSError:
        ENCRYPTION_KEYS = []  # settings_app.checks reports the unreadable file

# Webmail's IMAP server (webmail.checks validates these).
WEBMAIL_IMAP_HOST = env.str("WEBMAIL_IMAP_HOST", default="outlook.office365.com")
WEBMAIL_IMAP_PORT = env.int("WEBMAIL_IMAP_PORT", default=993)
WEBMAIL_IMAP_SECURITY = env.str("WEBMAIL_IMAP_SECURITY", default="ssl")
WEBMAIL_IMAP_CA_FILE = env.str("WEBMAIL_IMAP_CA_FILE", default="")
WEBMAIL_IMAP_TIMEOUT = env.float("WEBMAIL_IMAP_TIMEOUT", default=15.0)
# The longest one download (an attachment or a message's source) may take, all chunks together.
WEBMAIL_DOWNLOAD_TIMEOUT = env.float("WEBMAIL_DOWNLOAD_TIMEOUT", default=300.0)
# Send each browser's address with IMAP ID before signing in, for a server that trusts ours.
WEBMAIL_IMAP_SEND_CLIENT_ADDRESS = env.bool("WEBMAIL_IMAP_SEND_CLIENT_ADDRESS", default=False)
# Signed-in connections are kept this long for the next page of the same browser session.
WEBMAIL_IMAP_IDLE_SECONDS = env.int("WEBMAIL_IMAP_IDLE_SECONDS", default=120)
WEBMAIL_IMAP_POOL_SIZE = env.int("WEBMAIL_IMAP_POOL_SIZE", default=200)
# Connection budget per mailbox, across every process (webmail.pool): under half the strictest
# common server limit, leaving room for the user's phone and desktop mail program.
WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX = env.int(
    "WEBMAIL_IMAP_MAX_CONNECTIONS_PER_MAILBOX", default=4
)
WEBMAIL_IMAP_POOL_BYTES = env.int("WEBMAIL_IMAP_POOL_BYTES", default=64 * 1024 * 1024)
# Manual sign-in stops after this many rejected passwords within the window.
WEBMAIL_SIGN_IN_ATTEMPTS = env.int("WEBMAIL_SIGN_IN_ATTEMPTS", default=5)
WEBMAIL_SIGN_IN_WINDOW_MINUTES = env.int("WEBMAIL_SIGN_IN_WINDOW_MINUTES", default=15)
# Seconds between the open Webmail page's checks for new mail (unread counts, the list).
WEBMAIL_POLL_SECONDS = env.int("WEBMAIL_POLL_SECONDS", default=45)
# How much of a message is read for showing: longer bodies are cut, with a note.
WEBMAIL_TEXT_LIMIT = 1_000_000
WEBMAIL_HTML_LIMIT = 2_000_000
WEBMAIL_INLINE_IMAGES_LIMIT = 5_000_000  # characters of data: URLs in one message's HTML

# Microsoft 365 sign-in (OAuth 2.0, settings_app.microsoft). Without a client id the option is
# hidden and everything works with passwords only.
MICROSOFT_CLIENT_ID = env.str("MICROSOFT_CLIENT_ID", default="")
MICROSOFT_CLIENT_SECRET = env.str("MICROSOFT_CLIENT_SECRET", default="")
MICROSOFT_CLIENT_SECRET_FILE = env.str("MICROSOFT_CLIENT_SECRET_FILE", default="")
if MICROSOFT_CLIENT_SECRET_FILE and not MICROSOFT_CLIENT_SECRET:
    try:
        MICROSOFT_CLIENT_SECRET = Path(MICROSOFT_CLIENT_SECRET_FILE).read_text().strip()
    except OSError:
        MICROSOFT_CLIENT_SECRET = ""  # settings_app.checks reports the unreadable file
MICROSOFT_TENANT = env.str("MICROSOFT_TENANT", default="organizations")
MICROSOFT_AUTHORITY = env.str("MICROSOFT_AUTHORITY", default="https://login.microsoftonline.com")
MICROSOFT_CA_FILE = env.str("MICROSOFT_CA_FILE", default="")
MICROSOFT_TIMEOUT = env.float("MICROSOFT_TIMEOUT", default=10.0)

# Sending mail (webmail.smtp): the SMTP submission server, signed in to with the IMAP
# credentials. Security is "starttls" or "ssl", never plain; certificates are verified.
WEBMAIL_SMTP_HOST = env.str("WEBMAIL_SMTP_HOST", default="smtp.office365.com")
WEBMAIL_SMTP_PORT = env.int("WEBMAIL_SMTP_PORT", default=587)
WEBMAIL_SMTP_SECURITY = env.str("WEBMAIL_SMTP_SECURITY", default="starttls")
WEBMAIL_SMTP_CA_FILE = env.str("WEBMAIL_SMTP_CA_FILE", default="")
WEBMAIL_SMTP_TIMEOUT = env.float("WEBMAIL_SMTP_TIMEOUT", default=30.0)
# "auto": Microsoft's servers keep a copy in Sent Items themselves, others get one by IMAP;
# "append": Webmail always appends one; "server": the server always does.
WEBMAIL_SENT_COPY = env.str("WEBMAIL_SENT_COPY", default="auto")
WEBMAIL_MAX_MESSAGE_BYTES = env.int("WEBMAIL_MAX_MESSAGE_BYTES", default=25 * 1024 * 1024)
WEBMAIL_SEND_RECIPIENTS_PER_HOUR = env.int("WEBMAIL_SEND_RECIPIENTS_PER_HOUR", default=200)
# Sends at once per mailbox, across all processes (Exchange Online allows 3).
WEBMAIL_SMTP_MAX_CONNECTIONS_PER_MAILBOX = env.int(
    "WEBMAIL_SMTP_MAX_CONNECTIONS_PER_MAILBOX", default=2
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "settings_app",
    "webmail",
]

MIDDLEWARE = [
    "clientmanager.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "clientmanager.middleware.NeverCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "settings_app.backends.ProfileBackend",
]

ROOT_URLCONF = "clientmanager.urls"
WSGI_APPLICATION = "clientmanager.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
    # Only for hot partials named *.jinja (the folder and message pages' mail parts), asked for
    # by engine name: Django's template language was slower for them than the mail server.
    # webmail.jinja turns autoescaping on and gives it the Django helpers they use.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "webmail.jinja.environment"},
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep database connections between requests, checked before reuse (survives a restart).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"].get("ENGINE") == "django.db.backends.sqlite3":
    # Tests on SQLite use a file, as `make run` does: Django's default in-memory test database
    # shares one cache between threads and refuses concurrent writers at once ("database table
    # is locked") instead of waiting for them, which no real deployment does.
    DATABASES["default"]["TEST"] = {"NAME": BASE_DIR / "test-db.sqlite3"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "settings_app:show"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="Europe/London")
USE_I18N = True
USE_TZ = True
# Bare "www." addresses in plain-text mail become https:// links (Django 7 will do so anyway).
URLIZE_ASSUME_HTTPS = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed files with content hashes in their names, served by WhiteNoise.
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Sessions live in the database, so any app server can serve any request. They end when the
# browser closes or after SESSION_COOKIE_AGE seconds, and a password typed into Webmail is
# refused after the same time even if its session lingers (run `manage.py clearsessions` daily).
# clientmanager.sessions is Django's database store with a faster read.
SESSION_ENGINE = "clientmanager.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

# HTTPS. Behind a TLS-terminating proxy, set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# and TRUSTED_PROXY_COUNT to the number of proxies in front of the app.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every page; the message-body view sets a stricter one of its own.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Sign-in abuse limits for the app's own login (django-axes): this many failures for one user
# name from one address lock that pair out for the cool-off time.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "clientmanager.middleware.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Error reports go by email to ADMINS when DEBUG is off; with no ADMINS none are sent.
ADMINS = env.list("ADMINS", default=[])
SERVER_EMAIL = env.str("SERVER_EMAIL", default="clientmanager@localhost")
# Error reports hide every cookie value and the CSRF secret (a session id is a live mailbox).
DEFAULT_EXCEPTION_REPORTER_FILTER = "clientmanager.reporting.ReportFilter"
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env.str("EMAIL_HOST", default="localhost"),
            "port": env.int("EMAIL_PORT", default=25),
            "username": env.str("EMAIL_HOST_USER", default=""),
            "password": env.str("EMAIL_HOST_PASSWORD", default=""),
            "use_tls": env.bool("EMAIL_USE_TLS", default=False),
        },
    }
}

# One line per request on stdout (clientmanager.middleware), with the request id on every line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "clientmanager.middleware.RequestIdFilter"},
        "no_mail_server_faults": {"()": "clientmanager.reporting.NoMailServerFaults"},
    },
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id"],
            "formatter": "line",
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["request_id", "no_mail_server_faults"],
            "level": "ERROR",
        },
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers would print tracebacks to stderr; ours go to stdout, one line
        # per request is logged by the middleware, and reports are emailed to ADMINS.
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["mail_admins"], "level": "ERROR", "propagate": True},
        "django.server": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
        # imapclient logs whole IMAP conversations at DEBUG; mail content stays out of logs.
        "imapclient": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # msal writes authorization codes and PKCE verifiers at DEBUG.
        "msal": {"level": "WARNING"},
    },
}
