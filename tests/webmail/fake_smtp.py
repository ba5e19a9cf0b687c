"""An SMTP server that answers on cue, for refusals a real Postfix cannot give when asked:
Microsoft's 5.7.30 and 5.7.139, Exchange's 4.3.2 thread limit, and a server that hangs."""

import contextlib
import ssl
from pathlib import Path

from tests.webmail.fakes import FakeServer


class FakeSmtpServer(FakeServer):
    """Speak just enough SMTP (with STARTTLS) to reach the step where it refuses.

    `auth_reply` answers AUTH (e.g. "535 5.7.139 ..."); with "" AUTH succeeds and
    `mail_reply` answers MAIL FROM. `silent` accepts connections and never says anything;
    with `starttls` False it offers AUTH on the plain connection and no STARTTLS.
    """

    def __init__(self, tls_dir: Path, *, auth_reply="", mail_reply="", silent=False, starttls=True):
        self.starttls = starttls
        self.auth_reply = auth_reply
        self.mail_reply = mail_reply
        self.silent = silent
        self.commands: list[str] = []
        self.lines: list[str] = []  # whole command lines (test secrets only)
        super().__init__(tls_dir)

    def _serve(self, connection):
        with contextlib.suppress(OSError, ssl.SSLError):
            if self.silent:
                self._stopping.wait(60)
                return
            stream = connection.makefile("rwb")
            self._say(stream, "220 fake.example ESMTP")
            secure = False
            while line := stream.readline():
                command = line.decode().strip()
                self.commands.append(command.split(" ")[0].upper())
                self.lines.append(command)
                verb = command.upper()
                if verb.startswith("EHLO"):
                    extra = "250-AUTH PLAIN LOGIN XOAUTH2" if secure else "250-STARTTLS"
                    if not secure and not self.starttls:
                        extra = "250-AUTH PLAIN LOGIN"
                    self._say(stream, f"250-fake.example\r\n{extra}\r\n250 SIZE 10240000")
                elif verb == "STARTTLS":
                    self._say(stream, "220 2.0.0 Ready to start TLS")
                    connection = self.context.wrap_socket(connection, server_side=True)
                    self.connections.append(connection)
                    stream = connection.makefile("rwb")
                    secure = True
                elif verb.startswith("AUTH"):
                    self._say(stream, self.auth_reply or "235 2.7.0 Authentication successful")
                elif verb.startswith("MAIL"):
                    self._say(stream, self.mail_reply or "250 2.1.0 Sender OK")
                elif verb == "DATA":
                    self._say(stream, "354 End data with <CR><LF>.<CR><LF>")
                    while stream.readline() not in (b".\r\n", b""):
                        pass
                    self._say(stream, "250 2.0.0 Queued")
                elif verb == "QUIT":
                    self._say(stream, "221 2.0.0 Bye")
                    return
                else:
                    self._say(stream, "250 2.0.0 OK")

    @staticmethod
    def _say(stream, text: str) -> None:
        stream.write(text.encode() + b"\r\n")
        stream.flush()
