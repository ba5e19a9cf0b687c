"""Mail servers that misbehave on cue, for faults a real Dovecot cannot produce when asked."""

import contextlib
import re
import socket
import ssl
import threading
import time
from pathlib import Path


class FakeServer:
    """A loopback listener serving each connection on a thread of its own with `_serve`,
    holding a certificate for TLS; a context manager that hangs up on everyone at exit."""

    def __init__(self, tls_dir: Path):
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self._stopping = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._stopping.set()
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.close()

    def _accept(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        raise NotImplementedError


class FakeImapServer(FakeServer):
    """Listen on loopback and treat every client according to `behaviour`.

    silent: accept the connection and never answer (not even the TLS handshake).
    garbage: finish TLS, then greet with bytes that are not IMAP.
    drip: finish TLS, then send the greeting one byte a second.
    drop_mid_fetch: a tiny IMAP server that hangs up half-way through a FETCH answer.
    no_starttls: plain text IMAP that does not offer STARTTLS.
    imap: a tiny IMAP server over TLS whose answers a test chooses: `replies` replaces the tagged
      answer to a command ("LOGIN": "NO [LIMIT] Too many"), `delays` waits before answering
      one, `hang` lists commands never answered. Its INBOX holds one message of `body_size`
      bytes; FETCHes of it from `hang_at_offset` on are never answered.
    """

    def __init__(
        self,
        behaviour: str,
        tls_dir: Path,
        *,
        replies: dict[str, str] | None = None,
        delays: dict[str, float] | None = None,
        hang: tuple[str, ...] = (),
        body_size: int = 0,
        hang_at_offset: int | None = None,
    ):
        self.behaviour = behaviour
        self.replies = replies or {}
        self.delays = delays or {}
        self.hang = hang
        self.body_size = body_size
        self.hang_at_offset = hang_at_offset
        self.received = []
        super().__init__(tls_dir)

    def _serve(self, connection):
        try:
            if self.behaviour == "silent":
                self._stopping.wait(60)
                return
            if self.behaviour == "no_starttls":
                self._imap(connection, capabilities="IMAP4rev1 AUTH=PLAIN")
                return
            tls = self.context.wrap_socket(connection, server_side=True)
            self.connections.append(tls)
            if self.behaviour == "garbage":
                tls.sendall(b"\x00\xff\xfeHTTP/1.1 400 Bad Request\r\n\r\n")
                self._stopping.wait(60)
            elif self.behaviour == "drip":
                for byte in b"* OK [CAPABILITY IMAP4rev1] slow server ready\r\n":
                    if self._stopping.wait(1):
                        return
                    tls.sendall(bytes([byte]))
            elif self.behaviour == "drop_mid_fetch":
                self._imap(tls, capabilities="IMAP4rev1")
            elif self.behaviour == "imap":
                self._imap(tls, capabilities="IMAP4rev1 AUTH=PLAIN UIDPLUS")
        except (OSError, ssl.SSLError):
            return

    def _imap(self, connection, *, capabilities):
        file = connection.makefile("rb")
        connection.sendall(b"* OK fake server ready\r\n")
        while not self._stopping.is_set():
            line = file.readline()
            if not line:
                return
            self.received.append(line)
            tag, _, rest = line.decode(errors="replace").partition(" ")
            command = rest.split(" ", 1)[0].upper().strip()
            if command == "UID":
                command = rest.split(" ", 2)[1].upper()
            if command in self.hang:
                self._stopping.wait(60)
                return
            if command in self.delays:
                time.sleep(self.delays[command])
            if command in self.replies:
                connection.sendall(f"{tag} {self.replies[command]}\r\n".encode())
                continue
            if command == "FETCH" and self.behaviour == "imap":
                if not self._body(connection, tag, line):
                    return
                continue
            reply = {
                "CAPABILITY": f"* CAPABILITY {capabilities}\r\n{tag} OK done\r\n",
                "LOGIN": f"{tag} OK [CAPABILITY {capabilities}] Logged in\r\n",
                "LIST": f'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK done\r\n',
                "STATUS": f"* STATUS INBOX (MESSAGES 3 UNSEEN 1)\r\n{tag} OK done\r\n",
                "SELECT": (
                    f"* {1 if self.behaviour == 'imap' else 3} EXISTS\r\n"
                    "* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 4] ok\r\n"
                    f"{tag} OK [READ-WRITE] selected\r\n"
                ),
                "LOGOUT": f"* BYE bye\r\n{tag} OK done\r\n",
            }.get(command)
            if command == "FETCH":
                connection.sendall(b'* 1 FETCH (UID 1 FLAGS (\\Seen) ENVELOPE ("Mon, 1 Jan 2024 ')
                time.sleep(0.1)
                connection.close()
                return
            connection.sendall((reply or f"{tag} BAD unknown\r\n").encode())

    def _body(self, connection, tag: str, line: bytes) -> bool:
        """Answer a FETCH of part of message 1's body; False once told to hang instead."""
        match = re.search(rb"<(\d+)\.(\d+)>", line)
        offset, length = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if self.hang_at_offset is not None and offset >= self.hang_at_offset:
            self._stopping.wait(60)
            return False
        data = b"x" * max(0, min(length, self.body_size - offset))
        connection.sendall(
            f"* 1 FETCH (UID 1 BODY[]<{offset}> {{{len(data)}}}\r\n".encode()
            + data
            + f")\r\n{tag} OK done\r\n".encode()
        )
        return True
