"""`make bench`: how fast Webmail opens, against a bare IMAP script and a trivial view, in one run.

It also sends a 1 MB message from the compose form through a private Postfix, against a bare
smtplib script sending the same message (STARTTLS, AUTH, one MAIL transaction).

Starts a private Dovecot with mailboxes of 1,000 and 100,000 messages (written straight into
Maildir), serves the app with gunicorn in production settings on PostgreSQL, and measures
interleaved rounds so that the ratios compare like with like. Prints a table and writes JSON.
`--quick` runs a tiny version only to check that the benchmark still works.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet
from imapclient import IMAPClient

from devtools.dovecot import Dovecot
from devtools.postfix import Postfix
from devtools.seed import bulk_mailbox
from devtools.serve import BASE_DIR, Gunicorn

PASSWORD = "bench-" + secrets.token_urlsafe(12)
TARGETS = {
    "cold open / bare script": 1.5,
    "warm open / bare script": 0.5,
    "100k page / 1k page (warm)": 1.2,
    "Settings / trivial view": 2.0,
    "message 1k / bare fetch 1k": 1.2,
    "message 100k / bare fetch 100k": 1.2,
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    return {
        "runs": len(values),
        "median_ms": round(statistics.median(values) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
    }


class Browser:
    """One browser: a keep-alive HTTP connection carrying one session cookie."""

    def __init__(self, port: int, cookie: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = cookie
        self.last_cookies: dict[str, str] = {}

    def get(self, path: str, request_id: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        try:
            self.connection.request(
                "GET", path, headers={"Cookie": self.cookie, "X-Request-ID": request_id}
            )
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle keep-alive connection: a browser asks again on a new
            # one, and so does this, timed afresh.
            self.connection.close()
            started = time.perf_counter()
            self.connection.request(
                "GET", path, headers={"Cookie": self.cookie, "X-Request-ID": request_id}
            )
            response = self.connection.getresponse()
        body = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.last_cookies[name] = rest.split(";", 1)[0]
        return response.status, body, time.perf_counter() - started

    def post(self, path, body: bytes, *, content_type, cookie, request_id) -> tuple[int, bytes]:
        headers = {
            "Cookie": cookie,
            "Content-Type": content_type,
            "X-Request-ID": request_id,
            "Origin": f"http://127.0.0.1:{self.connection.port}",
            "Referer": f"http://127.0.0.1:{self.connection.port}{path}",
        }
        self.connection.request("POST", path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


SEND_BYTES = 1024 * 1024


def attachment_bytes() -> bytes:
    return (secrets.token_bytes(1024) * (SEND_BYTES // 1024))[:SEND_BYTES]


def bare_send(postfix: Postfix, sender: str, recipient: str, attachment: bytes) -> float:
    """Send one message with a 1 MB attachment as a bare smtplib script would; return seconds."""
    import smtplib
    from email.message import EmailMessage

    started = time.perf_counter()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, "Bench (bare)"
    message.set_content("A 1 MB attachment.")
    message.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="bench.bin")  # fmt: skip
    context = ssl.create_default_context(cafile=str(postfix.ca_file))
    with smtplib.SMTP(postfix.host, postfix.port, timeout=30) as client:
        client.starttls(context=context)
        client.login(sender, PASSWORD)
        client.send_message(message)
    return time.perf_counter() - started


def webmail_send(port: int, cookie: str, recipient: str, attachment: bytes, n: int) -> float:
    """Open the compose form, then send it with a 1 MB attachment; return the seconds of both."""
    browser = Browser(port, cookie)
    started = time.perf_counter()
    status, page, _ = browser.get("/webmail/compose/", f"compose-{n:03d}")
    if status != 200:
        raise RuntimeError(f"the compose form answered {status}")
    fields = {
        name: re.search(rf'name="{name}" value="([^"]+)"'.encode(), page).group(1).decode()
        for name in ("csrfmiddlewaretoken", "token")
    }
    csrf_cookie = browser.last_cookies.get("csrftoken", "")
    fields.update(to=recipient, subject="Bench (Webmail)", body="A 1 MB attachment.")
    fields["action"] = "send"
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        'filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + attachment
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _ = browser.post(
        "/webmail/compose/",
        b"".join(parts),
        content_type=f"multipart/form-data; boundary={boundary}",
        cookie=f"{cookie}; csrftoken={csrf_cookie}",
        request_id=f"send-{n:03d}",
    )
    seconds = time.perf_counter() - started
    browser.close()
    if status != 302:
        raise RuntimeError(f"sending answered {status}")
    return seconds


# CAPABILITY (sent on connecting), LOGIN, SELECT, FETCH, LOGOUT.
BARE_COMMANDS = 5


def bare_open(dovecot: Dovecot, email: str) -> float:
    """Do the least a mail client must to show the newest 50 messages; return the seconds."""
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    started = time.perf_counter()
    client = IMAPClient(dovecot.host, dovecot.port, ssl_context=context, timeout=30)
    client.login(email, PASSWORD)
    exists = client.select_folder("INBOX")[b"EXISTS"]
    client.use_uid = False
    client.fetch(list(range(max(1, exists - 49), exists + 1)), ["ENVELOPE", "FLAGS"])
    client.logout()
    return time.perf_counter() - started


def _shown_part(structure, number: str = "") -> str | None:
    """The part number of the HTML part of a BODYSTRUCTURE, else of its first text part."""
    if structure.is_multipart:
        found = [
            _shown_part(part, f"{number}.{index}" if number else str(index))
            for index, part in enumerate(structure[0], start=1)
        ]
        html = [part for part in found if part and part.startswith("html:")]
        text = [part for part in found if part]
        return (html or text or [None])[0]
    kind = (structure[0].decode() + "/" + structure[1].decode()).lower()
    if kind == "text/html":
        return f"html:{number or '1'}"
    return f"text:{number or '1'}" if kind == "text/plain" else None


def bare_message(dovecot: Dovecot, email: str, uid: int) -> float:
    """Fetch one message as a bare script would show it, in a new session; return the seconds.

    Its envelope and structure, then the part to show (HTML if it has one): what the message
    page and its body frame show together.
    """
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    started = time.perf_counter()
    client = IMAPClient(dovecot.host, dovecot.port, ssl_context=context, timeout=30)
    client.login(email, PASSWORD)
    client.select_folder("INBOX")
    data = client.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE"])[uid]
    kind, _, number = _shown_part(data[b"BODYSTRUCTURE"]).partition(":")
    if kind != "html":
        raise RuntimeError(f"message {uid} of {email} has no HTML part")
    client.fetch([uid], [f"BODY.PEEK[{number}]"])
    client.logout()
    return time.perf_counter() - started


def read_html_uids(dovecot: Dovecot, email: str, count: int) -> list[int]:
    """UIDs of `count` HTML messages already read, newest first, past the newest page.

    Read ones, so that opening them changes no flag: marking one read renames its Maildir
    file, and the next view of that folder would pay Dovecot's rescan, not Webmail's work.
    Every tenth message of the bulk mailbox is HTML (UIDs ending in 4).
    """
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with IMAPClient(dovecot.host, dovecot.port, ssl_context=context, timeout=30) as client:
        client.login(email, PASSWORD)
        exists = client.select_folder("INBOX", readonly=True)[b"EXISTS"]
        seen = client.search(["SEEN", "UID", f"1:{max(1, exists - 100)}"])
    return sorted((uid for uid in seen if uid % 10 == 4), reverse=True)[:count]


def prepare_database(url: str) -> None:
    """Make the benchmark's database afresh (connecting to the server's postgres database)."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def make_users(mailboxes: dict[str, str], extra: int) -> dict[str, list[str]]:
    """Create users with saved passwords (Automatic) and return session cookies per user."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from settings_app.models import Profile

    User = get_user_model()
    cookies = {}
    for username, email in mailboxes.items():
        user = User.objects.create_user(username, email=email, password=secrets.token_hex(8))
        profile = Profile(user=user, webmail_access="automatic")
        profile.set_email_password(PASSWORD)  # before the first save: Automatic needs one
        profile.save()
        cookies[username] = []
        for _ in range(extra):
            client = Client()
            client.force_login(user)
            cookies[username].append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies


def worker_peak_memory(master_pid: int) -> float:
    """The largest peak resident size (VmHWM) among gunicorn's workers, in MB."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master_pid}$", text, re.M):
            match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
            if match:
                peak = max(peak, int(match.group(1)))
    return round(peak / 1024, 1)


def from_log(log: str, prefix: str) -> tuple[float | None, float | None]:
    """Median IMAP commands and server-side milliseconds of the requests with this id prefix."""
    found = re.findall(rf"\[{prefix}-\d+\] (?:GET|POST) \S+ \d+ ([\d.]+)ms .*imap=(\d+)", log)
    if not found:
        return None, None
    return (
        statistics.median(int(commands) for _, commands in found),
        round(statistics.median(float(ms) for ms, _ in found), 2),
    )


def run(args) -> dict:
    sizes = {"1k": 200, "100k": 2_000} if args.quick else {"1k": 1_000, "100k": 100_000}
    runs = 3 if args.quick else args.runs
    users_at_once = 5 if args.quick else 50
    results: dict = {"quick": args.quick, "runs": runs, "timings": {}, "imap_commands": {}}
    with tempfile.TemporaryDirectory(prefix="cm-bench-") as folder:
        root = Path(folder)
        dovecot = Dovecot(root / "dovecot").start()
        try:
            started = time.perf_counter()
            mailboxes = {}
            for label, count in sizes.items():
                email = f"bench{label}@bench.example"
                bulk_mailbox(dovecot.add_user(email, PASSWORD), email, count)
                mailboxes[f"user{label}"] = email
            # A cold open signs in afresh: each round uses a login of its own (a staff user of
            # its own) to the same mailbox, since a user's browser sessions share a connection.
            for label in sizes:
                for n in range(runs):
                    alias = f"cold{label}-{n}@bench.example"
                    dovecot.add_alias(alias, PASSWORD, of=mailboxes[f"user{label}"])
                    mailboxes[f"cold{label}-{n}"] = alias
            for number in range(users_at_once):
                email = f"crowd{number}@bench.example"
                bulk_mailbox(dovecot.add_user(email, PASSWORD), email, 100, seed=number + 2)
                mailboxes[f"crowd{number}"] = email
            dovecot.give_to_dovecot(dovecot.root / "mail")
            results["seed_seconds"] = round(time.perf_counter() - started, 1)
            postfix = Postfix(root / "postfix", dovecot, domains=("bench.example",)).start()
            # Dovecot rescans a Maildir changed within the last second on every access, and
            # indexes it on first use: let the new mailboxes settle as real ones would be.
            time.sleep(2)
            for _ in range(2):
                for email in mailboxes.values():
                    bare_open(dovecot, email)

            env = {
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "DATABASE_URL": args.database_url,
                "WEBMAIL_IMAP_HOST": dovecot.host,
                "WEBMAIL_IMAP_PORT": str(dovecot.port),
                "WEBMAIL_IMAP_CA_FILE": str(dovecot.ca_file),
                "WEBMAIL_SMTP_HOST": postfix.host,
                "WEBMAIL_SMTP_PORT": str(postfix.port),
                "WEBMAIL_SMTP_CA_FILE": str(postfix.ca_file),
                "WEBMAIL_SEND_RECIPIENTS_PER_HOUR": "10000",
                "SECURE_SSL_REDIRECT": "false",
                "SESSION_COOKIE_SECURE": "false",
                "CSRF_COOKIE_SECURE": "false",
                "LOG_LEVEL": "INFO",
            }
            prepare_database(args.database_url)
            for command in (["migrate", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
                subprocess.run(
                    [sys.executable, "manage.py", *command],
                    cwd=BASE_DIR,
                    env={**os.environ, **env},
                    check=True,
                )
            os.environ.update(env)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientmanager.settings")
            cookies = make_users(mailboxes, extra=runs + 1)

            with Gunicorn(env, root / "gunicorn.log") as app:
                measure(app, dovecot, mailboxes, cookies, sizes, runs, users_at_once, results)
                measure_sending(app, postfix, mailboxes, cookies, runs, results)
                results["worker_peak_memory_mb"] = worker_peak_memory(app.process.pid)
            log = (root / "gunicorn.log").read_text()
            results["server_ms"] = {}
            for label in (
                "cold1k", "warm1k", "cold100k", "warm100k", "message", "settings", "trivial",
                "signedin", "send", "msgpage1k", "msgbody1k", "msgpage100k", "msgbody100k",
            ):  # fmt: skip
                commands, server_ms = from_log(log, label)
                results["imap_commands"][label] = commands
                results["server_ms"][label] = server_ms
            results["imap_commands"]["bare script"] = BARE_COMMANDS
            results["errors_in_log"] = log.count("Traceback")
        finally:
            if "postfix" in locals():
                postfix.stop()
            dovecot.stop()
    timings = results["timings"]

    def ratio(a, b):
        return round(timings[a]["median_ms"] / timings[b]["median_ms"], 2)

    results["ratios"] = {
        "cold open / bare script": ratio("webmail cold 1k", "bare script 1k"),
        "warm open / bare script": ratio("webmail warm 1k", "bare script 1k"),
        "100k page / 1k page (warm)": ratio("webmail warm 100k", "webmail warm 1k"),
        "100k page / 1k page (cold)": ratio("webmail cold 100k", "webmail cold 1k"),
        # How much of that is the mail server's own cost of opening a big folder:
        "bare 100k / bare 1k": ratio("bare script 100k", "bare script 1k"),
        "cold open 100k / bare 100k": ratio("webmail cold 100k", "bare script 100k"),
        "Settings / trivial view": ratio("settings", "trivial view"),
        "Settings / trivial signed-in view": ratio("settings", "trivial signed-in view"),
        # Form, upload to the app, SMTP, and the copy in Sent (IMAP APPEND) against SMTP alone:
        "send 1 MB / bare smtplib": ratio("webmail send 1 MB", "bare smtplib 1 MB"),
        # A message page and its body frame, on the warm connection, against a new session
        # that fetches the same message's envelope, structure and HTML part:
        "message 1k / bare fetch 1k": ratio("message page + body 1k", "bare fetch 1k"),
        "message 100k / bare fetch 100k": ratio("message page + body 100k", "bare fetch 100k"),
    }
    results["targets"] = {
        name: {
            "ratio": results["ratios"][name],
            "at_most": limit,
            "met": results["ratios"][name] <= limit,
        }
        for name, limit in TARGETS.items()
    }
    results["targets"]["concurrent errors"] = {
        "errors": results["concurrent"]["errors"],
        "at_most": 0,
        "met": results["concurrent"]["errors"] == 0,
    }
    return results


def measure(app, dovecot, mailboxes, cookies, sizes, runs, users_at_once, results) -> None:
    times: dict[str, list[float]] = {}
    newest_uid = sizes["1k"]

    def record(label, seconds):
        times.setdefault(label, []).append(seconds)

    def check(status, body, what):
        if status != 200 or b'name="password"' in body:
            raise RuntimeError(f"{what} answered {status}: {body[:300]!r}")

    warm = {label: Browser(app.port, cookies[f"user{label}"][-1]) for label in ("1k", "100k")}
    html_uids = {label: read_html_uids(dovecot, mailboxes[f"user{label}"], runs) for label in sizes}
    for label, browser in warm.items():
        for n in range(3):  # sign in, and fill this worker's cache
            check(*browser.get("/webmail/", f"warmup{label}-{n}")[:2], "warm-up")
    # Interleaved rounds: each round measures every case once, so drift hits all alike.
    for n in range(runs):
        for label in ("1k", "100k"):
            record(f"bare script {label}", bare_open(dovecot, mailboxes[f"user{label}"]))
            cold = Browser(app.port, cookies[f"cold{label}-{n}"][0])
            status, body, seconds = cold.get("/webmail/", f"cold{label}-{n:03d}")
            cold.close()
            check(status, body, "cold open")
            record(f"webmail cold {label}", seconds)
            status, body, seconds = warm[label].get("/webmail/", f"warm{label}-{n:03d}")
            check(status, body, "warm open")
            record(f"webmail warm {label}", seconds)
        uid = newest_uid - n
        status, body, seconds = warm["1k"].get(f"/webmail/message/{uid}/", f"message-{n:03d}")
        check(status, body, "message")
        record("message (warm)", seconds)
        status, body, seconds = warm["1k"].get("/settings/", f"settings-{n:03d}")
        check(status, body, "settings")
        record("settings", seconds)
        status, body, seconds = warm["1k"].get("/livez", f"trivial-{n:03d}")
        check(status, body, "trivial view")
        record("trivial view", seconds)
        # The least a signed-in page costs: the session and the user, then a redirect.
        status, _, seconds = warm["1k"].get("/", f"signedin-{n:03d}")
        if status != 302:
            raise RuntimeError(f"the signed-in trivial view answered {status}")
        record("trivial signed-in view", seconds)
    # Opening messages in rounds of their own, after the others: fetching structures makes
    # Dovecot grow its cache file of the 100k folder, which slowed every later view of it.
    for n in range(runs):
        for label in ("1k", "100k"):
            html_uid = html_uids[label][n]  # a different one each round
            email = mailboxes[f"user{label}"]
            record(f"bare fetch {label}", bare_message(dovecot, email, html_uid))
            query = "?folder=INBOX"
            status, body, page_seconds = warm[label].get(
                f"/webmail/message/{html_uid}/{query}", f"msgpage{label}-{n:03d}"
            )
            check(status, body, "message page")
            status, body, body_seconds = warm[label].get(
                f"/webmail/message/{html_uid}/body/{query}", f"msgbody{label}-{n:03d}"
            )
            check(status, body, "message body")
            if f"<b>{html_uid - 1}</b>".encode() not in body:
                raise RuntimeError(f"the body frame of {html_uid} showed {body[:300]!r}")
            record(f"message page + body {label}", page_seconds + body_seconds)
    for browser in warm.values():
        browser.close()

    crowd = [f"crowd{number}" for number in range(users_at_once)]
    barrier = threading.Barrier(len(crowd))

    def one_user(username):
        """Open Webmail as a new browser session, all users at the same moment."""
        browser = Browser(app.port, cookies[username][0])
        barrier.wait()
        try:
            status, body, seconds = browser.get("/webmail/", f"crowd-{username[5:]:0>3}")
        except OSError:
            return None, False
        finally:
            browser.close()
        return seconds, status == 200 and b'name="password"' not in body and b"#99<" in body

    with ThreadPoolExecutor(len(crowd)) as pool:
        outcomes = list(pool.map(one_user, crowd))
    durations = [seconds for seconds, ok in outcomes if seconds is not None]
    results["concurrent"] = {
        "users": len(crowd),
        "errors": sum(1 for _, ok in outcomes if not ok),
        **summary(durations),
    }
    results["timings"] = {label: summary(values) for label, values in times.items()}


def measure_sending(app, postfix, mailboxes, cookies, runs, results) -> None:
    """Send a 1 MB message from Webmail and from a bare smtplib script, interleaved."""
    attachment = attachment_bytes()
    sender, recipient = mailboxes["user1k"], mailboxes["crowd0"]
    times: dict[str, list[float]] = {"bare smtplib 1 MB": [], "webmail send 1 MB": []}
    for n in range(runs):
        times["bare smtplib 1 MB"].append(bare_send(postfix, sender, recipient, attachment))
        seconds = webmail_send(app.port, cookies["user1k"][-1], recipient, attachment, n)
        times["webmail send 1 MB"].append(seconds)
    results["timings"].update({label: summary(values) for label, values in times.items()})


def report(results: dict) -> str:
    lines = [f"{'case':<26}{'runs':>6}{'median ms':>12}{'p95 ms':>10}"]
    for label, timing in results["timings"].items():
        lines.append(
            f"{label:<26}{timing['runs']:>6}{timing['median_ms']:>12.2f}{timing['p95_ms']:>10.2f}"
        )
    crowd = results["concurrent"]
    lines.append(
        f"{str(crowd['users']) + ' users at once':<26}{crowd['runs']:>6}"
        f"{crowd['median_ms']:>12.2f}{crowd['p95_ms']:>10.2f}   errors: {crowd['errors']}"
    )
    lines += ["", f"{'ratio':<30}{'value':>8}{'target':>10}"]
    for name, value in results["ratios"].items():
        target = results["targets"].get(name)
        verdict = ""
        if target:
            verdict = f"<= {target['at_most']:<5} {'met' if target['met'] else 'MISSED'}"
        lines.append(f"{name:<30}{value:>8.2f}   {verdict}")
    lines += [
        "",
        "IMAP commands per page view (median): "
        + ", ".join(
            f"{label} {count:g}"
            for label, count in results["imap_commands"].items()
            if count is not None
        ),
    ]
    lines.append(
        "Time inside the app (median ms, from its request log): "
        + ", ".join(f"{label} {ms:g}" for label, ms in results["server_ms"].items() if ms)
    )
    lines.append(f"Peak memory of a worker: {results['worker_peak_memory_mb']} MB")
    lines.append(f"Seeding the mailboxes took {results['seed_seconds']} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run, to check it works")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=BASE_DIR / "var" / "bench.json")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/clientmanager_bench"
    )
    args = parser.parse_args()
    results = run(args)
    print(report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nFigures written to {args.json}")


if __name__ == "__main__":
    main()
