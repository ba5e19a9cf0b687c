"""Write messages straight into a Maildir, as Dovecot would have stored them: fast to seed."""

import itertools
import os
from datetime import datetime
from pathlib import Path

from imapclient import imap_utf7

_counter = itertools.count()


def folder_path(maildir: Path, folder: str) -> Path:
    """The Maildir++ folder for an IMAP folder name (INBOX is the Maildir itself)."""
    if folder.upper() == "INBOX":
        return maildir
    encoded = imap_utf7.encode(folder).decode("ascii")
    return maildir / ("." + encoded.replace("/", "."))


def make_folder(maildir: Path, folder: str) -> Path:
    path = folder_path(maildir, folder)
    for sub in ["cur", "new", "tmp"]:
        (path / sub).mkdir(parents=True, exist_ok=True)
    if path != maildir:
        (path / "maildirfolder").touch()
    return path


def deliver(
    maildir: Path,
    message: bytes,
    *,
    folder: str = "INBOX",
    seen: bool = False,
    flagged: bool = False,
    when: datetime | None = None,
) -> Path:
    """Store `message` in `folder`; its arrival time (IMAP INTERNALDATE) is `when`."""
    path = make_folder(maildir, folder)
    timestamp = (when or datetime.now()).timestamp()
    flags = ("F" if flagged else "") + ("S" if seen else "")
    # Dovecot gives UIDs in file-name order; the counter keeps arrival order stable.
    name = f"{int(timestamp)}.M{next(_counter):08d}P{os.getpid()}.clientmanager,S={len(message)}"
    target = path / "cur" / f"{name}:2,{flags}"
    target.write_bytes(message)
    os.utime(target, (timestamp, timestamp))
    return target
