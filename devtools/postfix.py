"""Run a real Postfix for mail submission on loopback: for the tests and the demo (`make run`).

It behaves like a provider's submission port: STARTTLS first (MAIL before it gets 530), AUTH
only after it, checked by the private Dovecot's auth socket, and a signed-in user may only
send as their own address. Mail for the users the Dovecot knows is delivered into their
Maildirs over LMTP; nothing else is delivered and nothing leaves the machine (every other
destination goes to Postfix's `error` transport). Postfix's limits stay as shipped (a 10 MB
message size limit, advertised as SIZE).

Everything lives in one folder: main.cf, master.cf, the queue, certificates and the log.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.certs import make_certificates
from devtools.dovecot import Dovecot, free_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

MAIN_CF = """\
# Written by devtools/postfix.py; a private Postfix for Client Manager.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydestination =
mynetworks = 127.0.0.1/32
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
biff = no
alias_maps =
alias_database =
smtpd_banner = $myhostname ESMTP

# Submission as providers run it: TLS first, AUTH only over TLS, checked by Dovecot.
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = {root}/tls/cert.pem
smtpd_tls_key_file = {root}/tls/key.pem
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth_socket}
smtpd_sasl_auth_enable = yes

# Only signed-in users send, only as their own address, only to users who exist.
smtpd_sender_login_maps = regexp:{root}/sender-logins
smtpd_sender_restrictions = reject_sender_login_mismatch
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = reject_unlisted_recipient, permit_sasl_authenticated, reject

# Delivery into the test Dovecot; everything else fails at once rather than leave.
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = texthash:{root}/mailboxes
virtual_transport = lmtp:unix:{lmtp_socket}
default_transport = error:this test server delivers nowhere else
relay_transport = error:this test server delivers nowhere else

# No reverse DNS of the client's loopback address: this machine has no DNS server to ask, and
# each lookup would wait for its timeout (the tests connect from 127.0.0.2 upwards).
smtpd_peername_lookup = no
"""

# One listener on loopback plus Postfix's internal services; no port 25, no local delivery.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
showq     unix  n - n - - showq
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixMissing(RuntimeError):
    pass


def ensure_installed() -> None:
    """Explain how to install Postfix and Dovecot's LMTP server when either is missing."""
    from devtools.dovecot import LMTP

    if not Path(POSTFIX).exists() or not Path(LMTP).exists():
        raise PostfixMissing(
            "Postfix or Dovecot's LMTP server is not installed. Install them with "
            "'sudo apt-get install postfix dovecot-lmtpd' (make test does)."
        )


class Postfix:
    """A private Postfix in `root` taking submissions on 127.0.0.1:`port` for `dovecot`'s users.

    `domains` are the mail domains delivered into the Dovecot; call `sync_mailboxes()` after
    adding users to the Dovecot so that Postfix accepts mail for them.
    """

    def __init__(self, root: Path, dovecot: Dovecot, *, domains: tuple[str, ...], port=None):
        if not dovecot.delivers:
            raise PostfixMissing("This Dovecot was started without delivery for Postfix.")
        self.root = Path(root).resolve()
        self.dovecot = dovecot
        self.domains = domains
        self.port = port or free_port()
        self.host = "localhost"
        self.running = False
        self.queue: Path | None = None
        self._mailboxes: set[str] = set()

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def log_file(self) -> Path:
        return self.root / "postfix.log"

    def start(self) -> "Postfix":
        ensure_installed()
        for name in ["data", "tls"]:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        # The queue holds Unix sockets, whose paths are limited to 107 bytes: a short folder of
        # its own, as Dovecot's sockets have.
        self.queue = Path(tempfile.mkdtemp(prefix="cm-postfix-"))
        self.queue.chmod(0o755)
        shutil.chown(self.root / "data", "postfix")
        if not self.ca_file.exists():
            make_certificates(self.root / "tls")
        # Postfix's own processes pass through the folders above the queue.
        for folder in [self.root, *self.root.parents]:
            mode = folder.stat().st_mode
            if mode & 0o011 != 0o011:
                folder.chmod(mode | 0o011)
        # The sender may only be the signed-in user's own address (the login names addresses).
        (self.root / "sender-logins").write_text("/^(.+)$/ ${1}\n")
        self._write_mailboxes()
        (self.root / "main.cf").write_text(
            MAIN_CF.format(
                root=self.root,
                queue=self.queue,
                domains=", ".join(self.domains),
                auth_socket=self.dovecot.auth_socket,
                lmtp_socket=self.dovecot.lmtp_socket,
            )
        )
        (self.root / "master.cf").write_text(MASTER_CF.format(port=self.port))
        self._postfix("start")
        self.running = True
        self._wait_until_listening()
        return self

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", str(self.root), command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {command} failed:\n{result.stdout}{result.stderr}\n{self.diagnostics()}"
            )

    def _wait_until_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Postfix did not listen on port {self.port}:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""

    def stop(self) -> None:
        """Stop Postfix: new connections are refused at once (the "server down" case)."""
        if not self.running:
            return
        self.running = False
        pid = self._master_pid()
        result = subprocess.run(
            [POSTFIX, "-c", str(self.root), "stop"], capture_output=True, check=False
        )
        if result.returncode != 0 and pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        shutil.rmtree(self.queue, ignore_errors=True)

    def _smtpd_processes(self) -> set[int]:
        """The smtpd processes of this Postfix (children of its master), from /proc."""
        master = self._master_pid()
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, rest = stat.read_text().split(" (", 1)
            except OSError:
                continue
            name, _, fields = rest.rpartition(") ")
            if name == "smtpd" and int(fields.split()[1]) == master:
                found.add(int(pid))
        return found

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def sync_mailboxes(self) -> None:
        """Accept mail for every user the Dovecot has now (reloading Postfix if that changed)."""
        users = {path.name for path in (self.dovecot.root / "passwd.d").iterdir()}
        if users == self._mailboxes:
            return
        self._write_mailboxes()
        if self.running:
            # smtpd processes read the table when they start, and an idle one may still take a
            # connection after the reload: wait until those of before have gone.
            before = self._smtpd_processes()
            logged = self.log_size()
            self._postfix("reload")
            deadline = time.monotonic() + 10
            while b"reload --" not in self.log_since(logged) or before & self._smtpd_processes():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Postfix did not reload:\n{self.diagnostics()}")
                time.sleep(0.02)

    def log_size(self) -> int:
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def log_since(self, offset: int) -> bytes:
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return log.read()

    def _write_mailboxes(self) -> None:
        folder = self.dovecot.root / "passwd.d"
        self._mailboxes = {path.name for path in folder.iterdir()} if folder.exists() else set()
        (self.root / "mailboxes").write_text("".join(f"{m} ok\n" for m in sorted(self._mailboxes)))

    def queue_is_empty(self) -> bool:
        """Whether everything accepted has been delivered (or bounced)."""
        result = subprocess.run(
            ["postqueue", "-c", str(self.root), "-p"], capture_output=True, text=True, check=False
        )
        return "Mail queue is empty" in result.stdout
