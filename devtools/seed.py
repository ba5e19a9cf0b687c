"""Realistic mail for the tests, the demo mailbox and the benchmark, written straight to Maildir."""

import os
import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

from devtools.maildir import deliver, make_folder

# A 1x1 transparent PNG, used as an inline image.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

PEOPLE = [
    ("Margaret Hughes", "margaret.hughes@hughes-family.example"),
    ("Rajesh Patel", "rajesh@patel-partners.example"),
    ("Søren Østergaard", "soren@oestergaard.example"),
    ("Zoë Kowalczyk", "zoe.kowalczyk@example.net"),
    ("Platform Notices", "no-reply@platform.example"),
    ("Compliance Team", "compliance@practice.example"),
    ("Tom O'Brien", "tom.obrien@example.org"),
    ("José Álvarez", "jose@alvarez.example"),
]
SUBJECTS = [
    "Annual review: next steps",
    "ISA allowance for this tax year",
    "Pension transfer paperwork",
    "Re: Meeting on Thursday",
    "Updated risk questionnaire",
    "Quarterly valuation report",
    "Grüße aus Köln – Unterlagen",
    "Question about my SIPP",
    "Fwd: Inheritance tax planning",
    "Reminder: compliance training",
]


def message(
    *,
    sender: tuple[str, str],
    to: str,
    subject: str,
    text: str | None = None,
    html: str | None = None,
    when: datetime,
    attachments: list[tuple[str, bytes, str]] = (),
    inline_images: dict[str, bytes] | None = None,
) -> bytes:
    """Build a message; `inline_images` maps Content-IDs to PNG bytes the HTML refers to."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f'"{sender[0]}" <{sender[1]}>'
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(when)
    mail["Message-ID"] = make_msgid(domain="clientmanager.example")
    mail.set_content(text or "This message is best viewed in an email program that shows HTML.")
    if html is not None:
        mail.add_alternative(html, subtype="html")
        for content_id, data in (inline_images or {}).items():
            mail.get_payload()[1].add_related(data, "image", "png", cid=f"<{content_id}>")
    for filename, data, content_type in attachments:
        main, sub = content_type.split("/", 1)
        if main == "text":
            mail.add_attachment(data.decode(), subtype=sub, filename=filename)
        else:
            mail.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return mail.as_bytes()


def demo_mailbox(maildir: Path, owner: str, *, now: datetime | None = None) -> int:
    """Fill a Maildir with a few dozen realistic messages; return how many."""
    now = now or datetime.now(UTC)
    rng = random.Random(7)
    for folder in ["Clients", "Clients/Müller & Söhne", "Archive"]:
        make_folder(maildir, folder)
    count = 0
    for number in range(36):
        sender = PEOPLE[number % len(PEOPLE)]
        subject = SUBJECTS[number % len(SUBJECTS)]
        when = now - timedelta(hours=number * 7 + rng.randint(0, 5))
        body = (
            f"Dear colleague,\n\nPlease find the details about “{subject}” below.\n\n"
            "Kind regards,\n" + sender[0]
        )
        deliver(
            maildir,
            message(sender=sender, to=owner, subject=subject, text=body, when=when),
            seen=number > 5,
            flagged=number % 9 == 0,
            when=when,
        )
        count += 1
    newsletter = (
        "<h1 style='color:#1f4e8c'>Market update</h1>"
        "<p>Rates held steady this month. <img src='https://tracker.example/pixel.gif' "
        "width='1' height='1' alt=''></p>"
        "<p><img src='https://images.example/chart.png' alt='Chart of the month'></p>"
        "<p>Our logo: <img src='cid:logo@clientmanager.example' alt='Logo'></p>"
        "<p><a href='https://example.com/update'>Read the full update</a></p>"
    )
    deliver(
        maildir,
        message(
            sender=("Market Insights", "insights@markets.example"),
            to=owner,
            subject="Market update: rates held steady",
            text="Rates held steady this month.",
            html=newsletter,
            when=now - timedelta(minutes=30),
            inline_images={"logo@clientmanager.example": PIXEL_PNG},
        ),
        when=now - timedelta(minutes=30),
    )
    deliver(
        maildir,
        message(
            sender=PEOPLE[0],
            to=owner,
            subject="Signed application form",
            text="Hello,\n\nHere is the signed form.\n\nMargaret",
            when=now - timedelta(minutes=10),
            attachments=[("application form.pdf", b"%PDF-1.4\n% demo\n", "application/pdf")],
        ),
        when=now - timedelta(minutes=10),
    )
    deliver(
        maildir,
        message(
            sender=PEOPLE[2],
            to=owner,
            subject="Überweisung bestätigt – Kontoauszug für Søren",
            text="Die Überweisung ist eingegangen.",
            when=now - timedelta(minutes=5),
        ),
        flagged=True,
        when=now - timedelta(minutes=5),
    )
    count += 3
    for number in range(4):
        when = now - timedelta(days=number + 2)
        deliver(
            maildir,
            message(
                sender=PEOPLE[number + 1],
                to=owner,
                subject=f"Client file {number + 1}",
                text="Filed for reference.",
                when=when,
            ),
            folder="Clients/Müller & Söhne" if number % 2 else "Clients",
            seen=number > 0,
            when=when,
        )
        count += 1
    return count


_BULK_KINDS = {
    "plain": (
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Message {number} for {owner}.\r\nPlease review the attached figures before Friday.\r\n"
    ),
    "html": (
        'Content-Type: multipart/alternative; boundary="alt-{number}"\r\n\r\n'
        "--alt-{number}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Message {number}.\r\n"
        "--alt-{number}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Message <b>{number}</b> for {owner}.</p>\r\n--alt-{number}--\r\n"
    ),
    "attachment": (
        'Content-Type: multipart/mixed; boundary="mix-{number}"\r\n\r\n'
        "--mix-{number}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "See the attached note.\r\n"
        "--mix-{number}\r\nContent-Type: text/plain; name=note.txt\r\n"
        "Content-Disposition: attachment; filename=note.txt\r\n\r\n"
        "Attached note {number}.\r\n--mix-{number}--\r\n"
    ),
}


def bulk_mailbox(maildir: Path, owner: str, count: int, *, seed: int = 1) -> None:
    """Write `count` varied messages (some HTML, some with attachments) into the Inbox, fast.

    Messages are formatted from templates rather than built with the email package, so a
    mailbox of 100,000 takes seconds.
    """
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    cur = maildir / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        name, address = PEOPLE[rng.randrange(len(PEOPLE))]
        when = start + timedelta(minutes=number * 5)
        kind = "html" if number % 10 == 3 else "attachment" if number % 10 == 7 else "plain"
        headers = (
            f'From: "{name}" <{address}>\r\nTo: {owner}\r\n'
            f"Subject: {SUBJECTS[rng.randrange(len(SUBJECTS))]} #{number}\r\n"
            f"Date: {format_datetime(when)}\r\n"
            f"Message-ID: <bulk-{seed}-{number}@clientmanager.example>\r\nMIME-Version: 1.0\r\n"
        )
        raw = (headers + _BULK_KINDS[kind].format(number=number, owner=owner)).encode()
        flags = ("F" if rng.random() < 0.05 else "") + ("S" if rng.random() < 0.8 else "")
        timestamp = when.timestamp()
        path = cur / f"{int(timestamp)}.M{number:08d}P{seed}.bulk,S={len(raw)}:2,{flags}"
        path.write_bytes(raw)
        os.utime(path, (timestamp, timestamp))
