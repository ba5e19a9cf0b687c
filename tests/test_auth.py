import pytest

from tests.conftest import USER_PASSWORD


@pytest.mark.parametrize("path", ["/", "/settings/", "/settings/edit/", "/webmail/"])
def test_pages_require_sign_in(client, db, path):
    response = client.get(path, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_the_help_page_is_public(client, db):
    response = client.get("/help/email-password/")
    assert response.status_code == 200


def test_the_help_page_explains_app_passwords(client, db):
    page = client.get("/help/email-password/").content.decode()
    for words in [
        "multi-factor",
        "Security info",
        "Add method",
        "App password",
        "Contact Information",
        "Email password",
        "ask your IT administrator",
    ]:
        assert words in page


def test_a_user_signs_in_and_lands_on_settings(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": USER_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/settings/"
    assert "Alice Example" in response.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_the_header_offers_settings_webmail_and_sign_out(user_client):
    page = user_client.get("/settings/").content.decode()
    assert 'href="/settings/"' in page
    assert 'href="/webmail/"' in page
    assert 'action="/accounts/logout/"' in page


def test_signing_out_ends_the_session(user_client):
    user_client.post("/accounts/logout/")
    response = user_client.get("/settings/")
    assert response.status_code == 302


@pytest.mark.parametrize("next_url", ["//evil.example", "https://evil.example/", "/\\evil.example"])
def test_signing_in_with_a_next_address_elsewhere_stays_on_the_site(client, user, next_url):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": USER_PASSWORD, "next": next_url}
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/"


def test_the_sign_in_page_is_never_stored(client, db):
    response = client.get("/accounts/login/")

    assert "no-store" in response["Cache-Control"]


def test_signed_out_pages_are_not_kept_for_the_back_button(user_client):
    shown = user_client.get("/settings/")
    user_client.post("/accounts/logout/")

    assert "no-store" in shown["Cache-Control"]  # the browser must ask again, and is refused
    assert user_client.get("/settings/").status_code == 302
