from pathlib import Path

from django.conf import settings
from django.core import checks


@checks.register()
def check_imap_settings(app_configs, **kwargs):
    errors = []
    if settings.WEBMAIL_IMAP_SECURITY not in ("ssl", "starttls"):
        errors.append(
            checks.Error(
                f"WEBMAIL_IMAP_SECURITY is {settings.WEBMAIL_IMAP_SECURITY!r}.",
                hint="Use 'ssl' (TLS from the start, port 993) or 'starttls'. "
                "Plain IMAP is not supported.",
                id="webmail.E001",
            )
        )
    if settings.WEBMAIL_IMAP_CA_FILE and not Path(settings.WEBMAIL_IMAP_CA_FILE).is_file():
        errors.append(
            checks.Error(
                f"WEBMAIL_IMAP_CA_FILE names {settings.WEBMAIL_IMAP_CA_FILE}, which is not a file.",
                id="webmail.E002",
            )
        )
    if settings.WEBMAIL_IMAP_TIMEOUT <= 0:
        errors.append(checks.Error("WEBMAIL_IMAP_TIMEOUT must be above 0.", id="webmail.E003"))
    if not settings.WEBMAIL_IMAP_HOST:
        errors.append(checks.Error("WEBMAIL_IMAP_HOST is empty.", id="webmail.E004"))
    return errors


@checks.register()
def check_smtp_settings(app_configs, **kwargs):
    errors = []
    if settings.WEBMAIL_SMTP_SECURITY not in ("ssl", "starttls"):
        errors.append(
            checks.Error(
                f"WEBMAIL_SMTP_SECURITY is {settings.WEBMAIL_SMTP_SECURITY!r}.",
                hint="Use 'starttls' (port 587) or 'ssl' (port 465). Plain SMTP is not supported.",
                id="webmail.E011",
            )
        )
    if settings.WEBMAIL_SMTP_CA_FILE and not Path(settings.WEBMAIL_SMTP_CA_FILE).is_file():
        errors.append(
            checks.Error(
                f"WEBMAIL_SMTP_CA_FILE names {settings.WEBMAIL_SMTP_CA_FILE}, which is not a file.",
                id="webmail.E012",
            )
        )
    if settings.WEBMAIL_SMTP_TIMEOUT <= 0:
        errors.append(checks.Error("WEBMAIL_SMTP_TIMEOUT must be above 0.", id="webmail.E013"))
    if settings.WEBMAIL_SENT_COPY not in ("auto", "append", "server"):
        errors.append(
            checks.Error(
                f"WEBMAIL_SENT_COPY is {settings.WEBMAIL_SENT_COPY!r}.",
                hint="Use 'auto', 'append' or 'server'.",
                id="webmail.E014",
            )
        )
    return errors
