"""The user's signature in the compose form: new messages, replies, forwards; not in drafts."""

import re

from settings_app.models import profile_for
from tests.webmail import test_answer
from tests.webmail.sending import alert, arrived, form
from tests.webmail.test_answer import open_form, send

people = test_answer.people  # the fixture: Bob's message to Alice, Carol and Dan

SIGNATURE = "Alice Example\nExample & Co Financial Planning"
SIGNED = f"\n\n-- \n{SIGNATURE}"


def sign(user, signature=SIGNATURE):
    profile = profile_for(user)
    profile.signature = signature
    profile.save()


def test_it_starts_a_new_message_with_the_signature(sender_client, automatic_user):
    sign(automatic_user)
    response = sender_client.get("/webmail/compose/")
    assert response.context["form"].initial["body"] == SIGNED
    # The textarea shows it (escaped), blank lines first so the user writes above it.
    assert "-- \nAlice Example\nExample &amp; Co Financial Planning</textarea>" in (
        response.content.decode()
    )


def test_it_starts_empty_without_a_signature(sender_client):
    response = sender_client.get("/webmail/compose/")
    assert response.context["form"].initial.get("body", "") == ""
    assert "-- \n" not in response.content.decode()


def test_it_puts_the_signature_above_the_quoted_original(people, automatic_user):
    sign(automatic_user)
    for kind, original in [
        ("reply", "\n\nOn 20 November 2026 at 09:30, Bob Example"),
        ("reply-all", "\n\nOn 20 November 2026 at 09:30, Bob Example"),
        ("forward", "\n\n---------- Forwarded message ----------"),
    ]:
        uid = 59 if kind == "forward" else 61
        body = open_form(people["client"], kind, uid)["body"]
        assert body.startswith(SIGNED + original), (kind, body[:200])
        assert body.count("-- \n") == 1


def test_a_sent_reply_carries_the_signature(people, automatic_user):
    sign(automatic_user)
    initial = open_form(people["client"], "reply", 61)
    send(people["client"], initial, body="Thanks, Bob." + initial["body"])
    [reply] = arrived(people["bob"].maildir)
    text = reply.get_body(preferencelist=("plain",)).get_content()
    assert "Thanks, Bob.\n\n-- \nAlice Example\nExample & Co Financial Planning\n\nOn 20" in text
    assert "> Numbers attached." in text


def test_a_resumed_draft_is_not_signed_twice(sender_client, automatic_user, recipient):
    sign(automatic_user)
    bob, _ = recipient
    body = "First thoughts." + SIGNED
    response = sender_client.post(
        "/webmail/compose/", form(action="draft", to=bob.email, subject="Plan", body=body)
    )
    assert response.status_code == 302, alert(response)
    uid = int(re.search(r"draft=(\d+)", response["Location"]).group(1))

    resumed = sender_client.get(f"/webmail/compose/?draft={uid}").context["form"].initial
    assert resumed["body"].count("-- \n") == 1
    assert resumed["body"].startswith("First thoughts.\n\n-- \nAlice Example")
