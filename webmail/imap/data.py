"""The data handed to the views: folders, message summaries and pages of them."""

from dataclasses import dataclass
from datetime import datetime

PAGE_SIZE = 50
SPECIAL_ORDER = {"\\Drafts": 1, "\\Sent": 2, "\\Trash": 3}


def pages_for(count: int) -> int:
    """How many pages `count` messages fill (at least one, even when empty)."""
    return max(1, -(-count // PAGE_SIZE))


@dataclass
class FolderState:
    name: str
    uidvalidity: int
    messages: int


@dataclass
class Folder:
    name: str
    delimiter: str
    special: str | None = None
    messages: int | None = 0  # None: not known just now (shown without a count)
    unseen: int | None = 0
    selectable: bool = True

    @property
    def label(self) -> str:
        if self.name.upper() == "INBOX":
            return "Inbox"
        return self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name

    @property
    def depth(self) -> int:
        return self.name.count(self.delimiter) if self.delimiter else 0

    @property
    def sort_key(self):
        if self.name.upper() == "INBOX":
            return (0, "")
        return (SPECIAL_ORDER.get(self.special, 9), self.name.casefold())


@dataclass(frozen=True)
class Summary:
    uid: int
    sender: str
    sender_address: str
    recipients: str
    subject: str
    date: datetime | None
    size: int
    seen: bool
    flagged: bool


@dataclass
class Page:
    folder: str
    uidvalidity: int
    number: int
    count: int  # messages in the folder, or matches of a search
    messages: list[Summary]

    @property
    def key(self) -> tuple:
        """Equal for two pages that would look the same: same messages, same flags."""
        return (
            self.folder,
            self.uidvalidity,
            self.number,
            self.count,
            tuple((m.uid, m.seen, m.flagged) for m in self.messages),
        )

    @property
    def pages(self) -> int:
        return pages_for(self.count)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.count else 0

    @property
    def last(self) -> int:
        return min(self.number * PAGE_SIZE, self.count)
