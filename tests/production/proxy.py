"""Stand-ins for what sits in front of the app: a TCP relay to PostgreSQL that a drill can cut
and restore ("the database is down"), and a TLS-terminating proxy."""

import contextlib
import socket
import ssl
import threading


class Relay:
    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "Relay":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones until restore()."""
        self.up = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.close()


class TlsProxy:
    """A TLS-terminating HTTP proxy in front of the app, as a load balancer would be.

    It answers HTTPS on a free loopback port, adds X-Forwarded-Proto: https and appends the
    client's address to X-Forwarded-For, and passes one request per connection to `target`.
    """

    def __init__(self, target_port: int, cert_file, key_file, client_address="203.0.113.9"):
        self.target = ("127.0.0.1", target_port)
        self.client_address = client_address
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_file, key_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"

    def start(self) -> "TlsProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self.listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, raw_client):
        with contextlib.suppress(OSError), raw_client:
            client = self.context.wrap_socket(raw_client, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            head, body = head.split(b"\r\n\r\n", 1)
            lines = [
                line
                for line in head.split(b"\r\n")
                if not line.lower().startswith((b"x-forwarded-", b"connection:"))
            ]
            lines += [
                b"X-Forwarded-Proto: https",
                b"X-Forwarded-For: " + self.client_address.encode(),
                b"Connection: close",
            ]
            with socket.create_connection(self.target) as server:
                server.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
                threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
                while data := server.recv(65536):
                    client.sendall(data)

    @staticmethod
    def _pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
