"""`make run` on a fresh copy: a demo mail server, demo users, an inbox that opens by itself."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from devtools.dovecot import free_port

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_copy(tmp_path):
    """The project's files as a fresh clone would have them (no .env, database or venv)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path / "clientmanager"
    for name in filter(None, files):
        source = BASE_DIR / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return copy


class Run:
    """`python -m devtools.run` (what `make run` runs after installing) in its own group."""

    def __init__(self, folder: Path, **variables):
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "CLIENTMANAGER_ADDRESS": f"127.0.0.1:{self.port}",
            **variables,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output = ""
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop." not in self.output:
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"make run did not start:\n{self.output}")
            self.output += line
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, how=signal.SIGINT) -> str:
        """Press Ctrl-C (SIGINT to the terminal's process group), or kill it (SIGTERM to it)."""
        if self.process.poll() is None:
            if how == signal.SIGINT:
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(how)
        rest, _ = self.process.communicate(timeout=60)
        self.output += rest
        return self.output


def sign_in(url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password}
    ).encode()
    opener.open(urllib.request.Request(f"{url}/accounts/login/", data=data))
    return opener


def processes_running_from(folder: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


def test_make_run_serves_the_demo_inbox_and_stops_cleanly(fresh_copy):
    run = Run(fresh_copy)
    try:
        staff_password = re.search(r"Staff: user demo\s+password (\S+)", run.output).group(1)
        assert re.search(r"Admin: user admin\s+password \S+", run.output)
        assert f"Client Manager: {run.url}/" in run.output
        mail_port = int(re.search(r"IMAPS on 127\.0\.0\.1:(\d+)", run.output).group(1))
        assert str(fresh_copy / "var" / "demo-mail") in run.output

        browser = sign_in(run.url, "demo", staff_password)
        settings_page = browser.open(f"{run.url}/settings/").read().decode()
        inbox = browser.open(f"{run.url}/webmail/").read().decode()
    finally:
        output = run.stop()

    assert "Saved" in settings_page and "Automatic" in settings_page
    assert 'name="password"' not in inbox
    assert "Market update: rates held steady" in inbox
    assert "Signed application form" in inbox
    assert "Müller &amp; Söhne" in inbox
    assert "Stopped Client Manager and the demo mail server." in output
    time.sleep(0.5)
    assert processes_running_from(fresh_copy) == []
    for port in (run.port, mail_port):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_second_run_keeps_the_database_and_creates_nothing(fresh_copy):
    first = Run(fresh_copy)
    assert "Stopped Client Manager" in first.stop(how=signal.SIGTERM)  # kill, not Ctrl-C
    time.sleep(0.5)
    assert processes_running_from(fresh_copy) == []

    again = Run(fresh_copy)
    output = again.stop()

    assert "New database" not in output
    assert "Demo sign-ins are in" in output
    assert "Made the demo mailbox" not in output


def test_a_configured_mail_server_starts_no_demo_server(fresh_copy):
    run = Run(fresh_copy, WEBMAIL_IMAP_HOST="mail.example.test")
    output = run.stop()

    assert "Mail server: mail.example.test (WEBMAIL_IMAP_HOST)" in output
    assert "Demo mail server" not in output
    assert not (fresh_copy / "var" / "demo-mail").exists()
    assert processes_running_from(fresh_copy) == []


def test_the_demo_sends_mail_to_the_second_staff_user(fresh_copy):
    run = Run(fresh_copy)
    try:
        demo_password = re.search(r"Staff: user demo\s+password (\S+)", run.output).group(1)
        colleague = re.search(r"Staff: user colleague\s+password (\S+)", run.output).group(1)
        assert "Demo sending: Postfix, submission with STARTTLS" in run.output, run.output
        demo = sign_in(run.url, "demo", demo_password)
        page = demo.open(f"{run.url}/webmail/compose/").read().decode()
        fields = {
            name: re.search(rf'name="{name}" value="([^"]+)"', page).group(1)
            for name in ("csrfmiddlewaretoken", "token")
        }
        data = urllib.parse.urlencode(
            {**fields, "to": "colleague@clientmanager.test", "subject": "Hello from the demo",
             "body": "Welcome.", "action": "send"}
        ).encode()  # fmt: skip
        sent = demo.open(urllib.request.Request(f"{run.url}/webmail/compose/", data=data))
        assert "Sent to 1 recipient." in sent.read().decode()
        time.sleep(2)  # delivery through Postfix's queue
        inbox = sign_in(run.url, "colleague", colleague).open(f"{run.url}/webmail/").read()
    finally:
        output = run.stop()
    assert "Hello from the demo" in inbox.decode()
    assert "Stopped Client Manager and the demo mail server." in output
