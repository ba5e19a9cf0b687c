"""Settings for Client Manager, read from the environment (and a `.env` file if present).

Every variable is documented in `.env.example`. Problems with them are reported by system checks
(settings_app.checks), not here, so that a bad value gives a clear message rather than a traceback.
"""

from pathlib import Path

import environ

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
# Signed-in connections are kept this long for the next page of the same browser session.
WEBMAIL_IMAP_IDLE_SECONDS = env.int("WEBMAIL_IMAP_IDLE_SECONDS", default=120)
WEBMAIL_IMAP_POOL_SIZE = env.int("WEBMAIL_IMAP_POOL_SIZE", default=200)
WEBMAIL_IMAP_POOL_PER_SESSION = 2
# Manual sign-in stops after this many rejected passwords within the window.
WEBMAIL_SIGN_IN_ATTEMPTS = env.int("WEBMAIL_SIGN_IN_ATTEMPTS", default=5)
WEBMAIL_SIGN_IN_WINDOW_MINUTES = env.int("WEBMAIL_SIGN_IN_WINDOW_MINUTES", default=15)
# How much of a message is read for showing: longer bodies are cut, with a note.
WEBMAIL_TEXT_LIMIT = 1_000_000
WEBMAIL_HTML_LIMIT = 2_000_000
WEBMAIL_INLINE_IMAGES_LIMIT = 5_000_000

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "settings_app",
    "webmail",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
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

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Error reports go by email to ADMINS when DEBUG is off; with no ADMINS none are sent.
ADMINS = env.list("ADMINS", default=[])
SERVER_EMAIL = env.str("SERVER_EMAIL", default="clientmanager@localhost")
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # imapclient logs whole IMAP conversations at DEBUG; mail content stays out of logs.
        "imapclient": {"level": "WARNING"},
    },
}
