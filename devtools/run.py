"""`make run`: prepare a local configuration, start a demo mail server, migrate and serve.

With no WEBMAIL_IMAP_HOST configured, a private Dovecot on loopback serves a demo mailbox from
var/demo-mail (the same code the tests use), and a new database gets a demo staff user whose
Webmail opens that mailbox automatically, plus an admin. Ctrl-C stops everything.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"
DEMO_DIR = BASE_DIR / "var" / "demo-mail"
DEMO_EMAIL = "demo@clientmanager.test"
# A second staff user with a mailbox, so mail sent in the demo can be seen arriving.
COLLEAGUE_EMAIL = "colleague@clientmanager.test"
DEMO_MAIL_PORT = 9993
SIGN_INS = BASE_DIR / "var" / "demo-sign-ins.txt"


def read_env_file() -> dict[str, str]:
    values = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            name, separator, value = line.partition("=")
            if separator and not name.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def ensure_local_env() -> None:
    """Write a .env for local use once: DEBUG on, a random SECRET_KEY and an encryption key."""
    values = read_env_file()
    additions = {}
    if not ENV_FILE.exists():
        additions["DEBUG"] = "true"
    if not values.get("SECRET_KEY"):
        additions["SECRET_KEY"] = secrets.token_urlsafe(50)
    if not values.get("ENCRYPTION_KEYS") and not values.get("ENCRYPTION_KEYS_FILE"):
        additions["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if not additions:
        return
    lines = [f"{name}={value}" for name, value in additions.items()]
    starts_a_line = not ENV_FILE.exists() or ENV_FILE.read_text().endswith("\n")
    with ENV_FILE.open("a") as env_file:
        if not starts_a_line:
            env_file.write("\n")
        env_file.write("\n".join(["# Written by make run for local use.", *lines, ""]))
    print(f"Wrote {', '.join(additions)} to {ENV_FILE} (local use only; keep this file private).")
    if "ENCRYPTION_KEYS" in additions:
        print("A new encryption key was generated: email passwords saved here need it to be read.")


def start_demo_mail():
    """Start the demo Dovecot and fill its mailbox the first time; return it and the password."""
    from devtools import dovecot, seed

    try:
        dovecot.ensure_installed(may_install=True)
    except (dovecot.DovecotMissing, subprocess.CalledProcessError) as exc:
        print(f"No demo mail server: {exc}")
        return None, None
    if os.geteuid() != 0:
        print(
            "No demo mail server: Dovecot must start as root to run its processes as its own "
            "users. Set WEBMAIL_IMAP_HOST in .env to use another mail server."
        )
        return None, None
    # Postfix takes the demo's submissions; installed now, so Dovecot can deliver for it.
    installer = BASE_DIR / "devtools" / "system-packages"
    subprocess.run(["sh", str(installer), "postfix", "dovecot-lmtpd"], check=False)
    port = DEMO_MAIL_PORT if _port_free(DEMO_MAIL_PORT) else None
    server = dovecot.Dovecot(DEMO_DIR, port=port)
    password_file = DEMO_DIR / "demo-mailbox-password"
    try:
        server.start()
    except RuntimeError as exc:
        print(f"The demo mail server did not start, so Webmail cannot open a mailbox:\n{exc}")
        return None, None
    for folder in server.opened:
        print(f"Let the mail server's users pass through {folder} (chmod o+x).")
    try:
        if not password_file.exists():
            password = secrets.token_urlsafe(16)
            maildir = server.add_user(DEMO_EMAIL, password)
            count = seed.demo_mailbox(maildir, DEMO_EMAIL)
            server.give_to_dovecot(maildir)
            password_file.write_text(password)
            password_file.chmod(0o600)
            print(f"Made the demo mailbox {DEMO_EMAIL} with {count} messages.")
        colleague_file = DEMO_DIR / "colleague-mailbox-password"
        if not colleague_file.exists():
            colleague = secrets.token_urlsafe(16)
            server.add_user(COLLEAGUE_EMAIL, colleague)
            colleague_file.write_text(colleague)
            colleague_file.chmod(0o600)
        return server, password_file.read_text()
    except BaseException:
        server.stop()
        raise


def colleague_password() -> str | None:
    """The demo colleague's mailbox password, once the mailbox exists."""
    path = DEMO_DIR / "colleague-mailbox-password"
    return path.read_text() if path.exists() else None


def start_demo_submission(mail_server):
    """Start Postfix for the demo: submissions on loopback, delivered into the demo mailboxes."""
    from devtools import postfix

    if not mail_server.delivers:
        print("No sending in the demo: install postfix and dovecot-lmtpd to send mail.")
        return None
    try:
        server = postfix.Postfix(DEMO_DIR / "postfix", mail_server, domains=("clientmanager.test",))
        return server.start()
    except (postfix.PostfixMissing, RuntimeError, OSError) as exc:
        print(f"No sending in the demo: Postfix did not start:\n{exc}")
        return None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def create_demo_users(mail_password: str | None) -> list[str] | None:
    """On a database without users, make a demo staff user and an admin; return sign-in lines."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from settings_app.models import Profile

    User = get_user_model()
    if User.objects.exists():
        return None
    staff_password, admin_password = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
    demo = User.objects.create_user(
        "demo",
        email=DEMO_EMAIL,
        password=staff_password,
        first_name="Dana",
        last_name="Demo",
    )
    profile = Profile.objects.create(user=demo, phone="+44 20 7946 0123")
    if mail_password:
        profile.set_email_password(mail_password)
        profile.webmail_access = Profile.WebmailAccess.AUTOMATIC
        profile.save()
    User.objects.create_superuser(
        "admin", email="admin@clientmanager.test", password=admin_password
    )
    lines = [
        f"  Staff: user demo   password {staff_password}   (Webmail opens automatically)",
        f"  Admin: user admin  password {admin_password}   (/admin/)",
    ]
    if mail_password and colleague_password():
        colleague_sign_in = secrets.token_urlsafe(9)
        colleague = User.objects.create_user(
            "colleague",
            email=COLLEAGUE_EMAIL,
            password=colleague_sign_in,
            first_name="Colin",
            last_name="Colleague",
        )
        profile = Profile.objects.create(user=colleague)
        profile.set_email_password(colleague_password())
        profile.webmail_access = Profile.WebmailAccess.AUTOMATIC
        profile.save()
        lines.insert(
            1,
            f"  Staff: user colleague  password {colleague_sign_in}   "
            f"(write to {COLLEAGUE_EMAIL} as demo)",
        )
    return lines


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process and everything it started (Django's autoreloader runs a child)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(process):
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader, or the group looks alive
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> None:
    address = os.environ.get("CLIENTMANAGER_ADDRESS", "127.0.0.1:8000")
    ensure_local_env()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientmanager.settings")
    configured_host = os.environ.get("WEBMAIL_IMAP_HOST") or read_env_file().get(
        "WEBMAIL_IMAP_HOST"
    )
    mail_server, mail_password = (None, None) if configured_host else start_demo_mail()
    submission = None
    if mail_server is not None:
        os.environ.update(
            WEBMAIL_IMAP_HOST=mail_server.host,
            WEBMAIL_IMAP_PORT=str(mail_server.port),
            WEBMAIL_IMAP_SECURITY="ssl",
            WEBMAIL_IMAP_CA_FILE=str(mail_server.ca_file),
        )
        submission = start_demo_submission(mail_server)
    if submission is not None:
        os.environ.update(
            WEBMAIL_SMTP_HOST=submission.host,
            WEBMAIL_SMTP_PORT=str(submission.port),
            WEBMAIL_SMTP_SECURITY="starttls",
            WEBMAIL_SMTP_CA_FILE=str(submission.ca_file),
        )
    # A stop request (Ctrl-C or kill) ends the server below and then the mail server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"], cwd=BASE_DIR, check=True
        )
        sign_ins = create_demo_users(mail_password)
        if sign_ins:
            SIGN_INS.parent.mkdir(exist_ok=True)
            SIGN_INS.write_text("\n".join(sign_ins) + "\n")
            SIGN_INS.chmod(0o600)
        print()
        print(f"Client Manager: http://{address}/")
        if mail_server is not None:
            print(f"Demo mail server: Dovecot, IMAPS on 127.0.0.1:{mail_server.port}")
            print(f"  mailbox {DEMO_EMAIL}; data, logs and certificate in {DEMO_DIR}")
        if submission is not None:
            print(f"Demo sending: Postfix, submission with STARTTLS on 127.0.0.1:{submission.port}")
            print(f"  delivers to {DEMO_EMAIL} and {COLLEAGUE_EMAIL} only")
        elif configured_host:
            print(f"Mail server: {configured_host} (WEBMAIL_IMAP_HOST)")
        if sign_ins:
            print("New database: sign in with")
            print("\n".join(sign_ins))
            print(f"  (also saved in {SIGN_INS})")
        elif SIGN_INS.exists():
            print(f"Demo sign-ins are in {SIGN_INS}")
        else:
            print("Create an admin with: .venv/bin/python manage.py createsuperuser")
        print("Press Ctrl-C to stop.\n", flush=True)
        # Its own process group, so stopping reaches the autoreloader's child as well.
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", address],
            cwd=BASE_DIR,
            start_new_session=True,
        )
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            stop_group(server)
        if submission is not None:
            submission.stop()
        if mail_server is not None:
            mail_server.stop()
        print("\nStopped Client Manager" + (" and the demo mail server." if mail_server else "."))


if __name__ == "__main__":
    main()
