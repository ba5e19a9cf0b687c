"""Run a real Dovecot IMAP server on loopback: for the tests, the demo (`make run`) and the bench.

Everything lives in one folder: configuration, certificates, the passwd-file, Maildirs, logs.
Dovecot refuses to run its login process as root, so logins run as `dovenull` and mail
processes as `dovecot`, which owns the mail.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.certs import make_certificates

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
LMTP = "/usr/lib/dovecot/lmtp"  # Debian's dovecot-lmtpd

# The delays for rejected passwords stay as shipped: a rejection is answered after 2 s
# (auth_failure_delay), and later sign-ins from the same address wait 4 s, doubling up to 15 s,
# until one succeeds (the auth penalty). Turning either off would hide what users meet; the
# tests instead connect from a loopback address of their own each (tests/conftest.py), so one
# test's penalty never reaches the next.
CONFIG = """\
# Written by devtools/dovecot.py; a private Dovecot for Client Manager.
instance_name = {instance}
base_dir = {run_dir}
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%u
{capability_line}
{trust_line}

# One passwd-file per user: Dovecot rereads a changed file at most once a second, and a
# file of its own makes a new user visible at once.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd.d/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}

{namespace}

service imap-login {{
  inet_listener imap {{
    port = {starttls_port}
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""

# Dovecot as shipped: folders carry special-use flags, LIST-STATUS and MOVE are offered.
DOVECOT_NAMESPACE = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
}"""

# Like Exchange: its folder names with no special-use flags, and after sign-in only the
# capabilities Exchange announces, without MOVE (which some of its servers lack) so that
# Webmail's fallbacks (names, STATUS per folder, COPY and expunge) run against a real server.
EXCHANGE_NAMESPACE = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = create
  }
  mailbox "Sent Items" {
    auto = create
  }
  mailbox "Deleted Items" {
    auto = create
  }
  mailbox "Junk Email" {
    auto = create
  }
  mailbox Archive {
    auto = create
  }
}
protocol imap {
  imap_capability = IMAP4rev1 SASL-IR ID IDLE LITERAL+ UIDPLUS CHILDREN NAMESPACE UNSELECT
}"""

FLAVOURS = {"dovecot": DOVECOT_NAMESPACE, "exchange": EXCHANGE_NAMESPACE}
# The special folders of each flavour, by use.
FOLDER_NAMES = {
    "dovecot": {"drafts": "Drafts", "sent": "Sent", "trash": "Trash", "junk": "Junk"},
    "exchange": {
        "drafts": "Drafts",
        "sent": "Sent Items",
        "trash": "Deleted Items",
        "junk": "Junk Email",
    },
}


# Like Exchange Online with basic sign-in off: XOAUTH2 checked by the identity provider's
# introspection endpoint, and password LOGIN advertised but always refused (an empty passwd-file).
OAUTH2_MECHANISMS = "auth_mechanisms = xoauth2 oauthbearer plain login"
OAUTH2_PASSDBS = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = {root}/empty-passwd
}}"""
OAUTH2_CONFIG = """\
introspection_url = {introspection_url}
introspection_mode = post
username_attribute = username
client_id = dovecot
client_secret = dovecot-secret
"""


def oauth2_flavour(config: str, root: Path, introspection_url: str) -> str:
    """Turn `config` into the Exchange-like OAuth flavour; write the files it needs in `root`."""
    (root / "dovecot-oauth2.conf.ext").write_text(
        OAUTH2_CONFIG.format(introspection_url=introspection_url)
    )
    (root / "empty-passwd").write_text("")
    mechanisms = re.compile(r"^auth_mechanisms = .*$", re.MULTILINE)
    passdb = re.compile(r"^passdb \{\n.*?^\}", re.MULTILINE | re.DOTALL)
    if not mechanisms.search(config) or len(passdb.findall(config)) != 1:
        raise RuntimeError("The Dovecot configuration changed shape; update oauth2_flavour.")
    config = mechanisms.sub(OAUTH2_MECHANISMS, config)
    # LMTP delivery looks users up without a sign-in, and the static userdb would ask the
    # passdbs whether the user exists, which neither can answer. Postfix delivers only to the
    # users it lists (devtools/postfix.py), so the userdb may take every name it is given.
    static = "  driver = static\n  args = "
    if config.count(static) != 1:
        raise RuntimeError("The Dovecot configuration changed shape; update oauth2_flavour.")
    config = config.replace(static, static + "allow_all_users=yes ")
    return passdb.sub(lambda _: OAUTH2_PASSDBS.format(root=root), config)


# For a private Postfix (devtools/postfix.py): LMTP delivery into the Maildirs and Dovecot's
# auth socket for SMTP AUTH, both Unix sockets only the postfix user may use. Nothing more
# listens on the network, and no limit changes.
DELIVERY = """
protocols = imap lmtp
service lmtp {{
  unix_listener lmtp-postfix {{
    mode = 0600
    user = postfix
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0600
    user = postfix
  }}
}}
"""


class DovecotMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_installed(*, may_install: bool) -> None:
    """Install Debian's dovecot-imapd when missing and allowed; else explain how."""
    if Path(DOVECOT).exists():
        return
    if may_install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing dovecot-imapd (Debian package) for the local mail server...")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "dovecot-imapd"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        # Debian starts its own system-wide Dovecot on install; ours is separate.
        subprocess.run(["service", "dovecot", "stop"], check=False, capture_output=True)
        return
    raise DovecotMissing(
        "Dovecot is not installed. Install it with 'sudo apt-get install dovecot-imapd', "
        "or set WEBMAIL_IMAP_HOST to use another mail server."
    )


class Dovecot:
    """A private Dovecot in `root`, listening on 127.0.0.1 (IMAPS on `port`).

    `flavour` is "dovecot" (as shipped) or "exchange" (trimmed to look like Exchange).
    """

    def __init__(self, root: Path, *, port: int | None = None, flavour: str = "dovecot"):
        self.flavour = flavour
        self.folder_names = FOLDER_NAMES[flavour]
        self.root = Path(root).resolve()
        self.port = port or free_port()
        self.starttls_port = free_port()
        self.host = "localhost"
        self.process: subprocess.Popen | None = None
        self.opened: list[Path] = []  # folders start() let other users pass through
        self.run_dir: Path | None = None
        # Whether Postfix can deliver here and sign users in (both installed).
        self.delivers = _has_user("postfix") and Path(LMTP).exists()
        self.uid = pwd.getpwnam("dovecot").pw_uid
        self.gid = grp.getgrnam("dovecot").gr_gid

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def lmtp_socket(self) -> Path:
        """Where Postfix delivers mail over LMTP (while running, when `delivers`)."""
        return self.run_dir / "lmtp-postfix"

    @property
    def auth_socket(self) -> Path:
        """Where Postfix asks Dovecot to check SMTP AUTH (while running, when `delivers`)."""
        return self.run_dir / "auth-postfix"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    def start(
        self, *, capabilities: str = "", introspection_url: str = "", trusted_networks: str = ""
    ) -> "Dovecot":
        """Start the server; `capabilities` replaces the advertised list (to mimic others);
        `introspection_url` makes it sign in with OAuth tokens only (oauth2_flavour);
        `trusted_networks` (login_trusted_networks) may name their clients' address with ID."""
        for name in ["state", "mail", "tls"]:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        # Sockets live in a short folder of their own: Unix socket paths are limited to 107
        # bytes, which a project in a deep folder would pass.
        self.run_dir = Path(tempfile.mkdtemp(prefix="cm-dovecot-"))
        self.run_dir.chmod(0o755)
        # Login and mail processes, which are not root, must pass through to their files.
        for folder in [self.root, *self.root.parents]:
            mode = folder.stat().st_mode
            if mode & 0o011 != 0o011:
                folder.chmod(mode | 0o011)
                self.opened.append(folder)
        os.chown(self.root / "mail", self.uid, self.gid)
        if not self.ca_file.exists():
            make_certificates(self.root / "tls")
        (self.root / "passwd.d").mkdir(exist_ok=True)
        config = self.root / "dovecot.conf"
        text = CONFIG.format(
            instance=f"clientmanager-{self.port}",
            root=self.root,
            run_dir=self.run_dir,
            port=self.port,
            starttls_port=self.starttls_port,
            uid=self.uid,
            gid=self.gid,
            capability_line=f"imap_capability = {capabilities}" if capabilities else "",
            trust_line=f"login_trusted_networks = {trusted_networks}" if trusted_networks else "",
            namespace=FLAVOURS[self.flavour],
        ) + (DELIVERY.format() if self.delivers else "")
        if introspection_url:
            text = oauth2_flavour(text, self.root, introspection_url)
        config.write_text(text)
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "dovecot.stderr").open("wb"),
            start_new_session=True,
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot stopped at start:\n{self.diagnostics()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Dovecot did not listen on port {self.port}:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        texts = []
        for path in [self.root / "dovecot.stderr", self.log_file]:
            if path.exists():
                texts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(texts)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def add_user(self, email: str, password: str) -> Path:
        """Let `email` sign in with `password`; return the user's Maildir (empty at first)."""
        if ":" in email or ":" in password or "\n" in password:
            raise ValueError("A passwd-file line cannot hold ':' or a newline.")
        maildir = self.maildir(email)
        for sub in ["cur", "new", "tmp"]:
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self.give_to_dovecot(maildir)
        self._write_password(email, password)
        return maildir

    def add_alias(self, email: str, password: str, *, of: str) -> None:
        """Let `email` sign in with `password` to the same Maildir as `of` (a second login)."""
        self.maildir(email).symlink_to(self.maildir(of), target_is_directory=True)
        self._write_password(email, password)

    def set_password(self, email: str, password: str) -> None:
        """Change a user's password; Dovecot notices within a second, so this waits for it."""
        self._write_password(email, password)
        time.sleep(1.1)

    def _write_password(self, email: str, password: str) -> None:
        if "/" in email or email.startswith("."):
            raise ValueError("Not a usable user name for a passwd-file.")
        (self.root / "passwd.d" / email).write_text(
            f"{email}:{{PLAIN}}{password}\n", encoding="utf-8"
        )

    def maildir(self, email: str) -> Path:
        return self.root / "mail" / email

    def give_to_dovecot(self, path: Path) -> None:
        """Make `path` and everything below it belong to the dovecot user."""
        os.chown(path, self.uid, self.gid)
        for folder, subfolders, files in os.walk(path):
            for name in subfolders + files:
                os.chown(os.path.join(folder, name), self.uid, self.gid)

    def connection_count(self) -> int:
        """Count established client connections to this server (from /proc/net/tcp)."""
        ports = {self.port, self.starttls_port}
        count = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port in ports and fields[3] == "01":  # 01: ESTABLISHED
                    count += 1
        return count

    def connections_by_user(self) -> dict[str, int]:
        """Signed-in IMAP sessions per user, as Dovecot counts them for its limits."""
        result = subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), "who", "-1"],
            capture_output=True,
            text=True,
            check=True,
        )
        counts: dict[str, int] = {}
        for line in result.stdout.splitlines()[1:]:
            if line.strip():
                user = line.split()[0]
                counts[user] = counts.get(user, 0) + 1
        return counts
