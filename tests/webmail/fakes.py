"""Mail servers that misbehave on cue, for faults a real Dovecot cannot produce when asked."""

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path


class FakeImapServer:
    """Listen on loopback and treat every client according to `behaviour`.

    silent: accept the connection and never answer (not even the TLS handshake).
    garbage: finish TLS, then greet with bytes that are not IMAP.
    drip: finish TLS, then send the greeting one byte a second.
    drop_mid_fetch: a tiny IMAP server that hangs up half-way through a FETCH answer.
    no_starttls: plain text IMAP that does not offer STARTTLS.
    """

    def __init__(self, behaviour: str, tls_dir: Path):
        self.behaviour = behaviour
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.received = []
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
            reply = {
                "CAPABILITY": f"* CAPABILITY {capabilities}\r\n{tag} OK done\r\n",
                "LOGIN": f"{tag} OK [CAPABILITY {capabilities}] Logged in\r\n",
                "LIST": f'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK done\r\n',
                "STATUS": f"* STATUS INBOX (MESSAGES 3 UNSEEN 1)\r\n{tag} OK done\r\n",
                "SELECT": (
                    "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 4] ok\r\n"
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
