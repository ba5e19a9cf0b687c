"""The email signature in Settings: saved, shown, refused with control characters."""

from settings_app.models import Profile, profile_for
from tests.settings_app.test_admin import change_url, inline_data
from tests.settings_app.test_edit import form_data

SIGNATURE = "Alice Example\nChartered Financial Planner\tExample & Co"


def test_it_offers_a_signature_box_with_help(user_client):
    page = user_client.get("/settings/edit/").content.decode()
    assert '<textarea name="signature"' in page
    assert "Plain text put under new messages, replies and forwards" in page


def test_it_saves_the_signature_and_shows_it(user_client, user):
    response = user_client.post(
        "/settings/edit/",
        form_data(user, signature=SIGNATURE.replace("\n", "\r\n")),
        follow=True,
    )

    assert response.redirect_chain == [("/settings/", 302)]
    assert profile_for(user).signature == SIGNATURE  # the browser's CR LF kept as LF
    page = response.content.decode()
    assert "Email signature" in page
    assert "Alice Example<br>Chartered Financial Planner" in page
    assert "Example &amp; Co" in page
    assert user_client.get("/settings/edit/").context["form"].initial["signature"] == SIGNATURE


def test_it_shows_not_set_without_a_signature(user_client):
    page = user_client.get("/settings/").content.decode()
    assert "<dt>Email signature</dt>\n    <dd>Not set</dd>" in page


def test_it_refuses_control_characters_and_keeps_what_was_typed(user_client, user):
    response = user_client.post(
        "/settings/edit/",
        form_data(user, first_name="Alicia", phone="+44 20 7946 0001", signature="Bye\x1b[31m"),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "The signature cannot contain control characters; only line breaks and tabs." in page
    assert 'value="Alicia"' in page and 'value="+44 20 7946 0001"' in page
    user.refresh_from_db()
    assert user.first_name != "Alicia"
    assert profile_for(user).signature == ""


def test_it_refuses_a_signature_over_2000_characters(user_client, user):
    response = user_client.post("/settings/edit/", form_data(user, signature="x" * 2001))
    assert response.status_code == 200
    assert "at most 2000 characters" in response.content.decode()
    assert profile_for(user).signature == ""


def test_the_admin_edits_the_signature(admin_client, user):
    page = admin_client.get(change_url(user)).content.decode()
    assert 'name="profile-0-signature"' in page

    response = admin_client.post(
        change_url(user), inline_data(user, **{"profile-0-signature": "Kind regards\r\nAlice"})
    )

    assert response.status_code == 302
    assert Profile.objects.get(user=user).signature == "Kind regards\nAlice"
