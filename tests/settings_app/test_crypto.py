import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from settings_app import crypto


def test_it_reads_back_what_it_encrypts():
    token = crypto.encrypt("app-password", owner="profile:1")
    assert crypto.decrypt(token, owner="profile:1") == "app-password"


def test_each_token_is_different():
    first = crypto.encrypt("app-password", owner="profile:1")
    assert first != crypto.encrypt("app-password", owner="profile:1")


def test_a_token_does_not_decrypt_for_another_owner():
    token = crypto.encrypt("app-password", owner="profile:1")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, owner="profile:2")


def test_it_raises_on_a_damaged_token():
    token = crypto.encrypt("app-password", owner="profile:1")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token[:-4] + "AAAA", owner="profile:1")


def test_it_raises_on_a_token_under_a_removed_key(settings):
    token = crypto.encrypt("app-password", owner="profile:1")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, owner="profile:1")


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    old_token = crypto.encrypt("app-password", owner="profile:1")
    settings.ENCRYPTION_KEYS = [new, old]
    new_token = crypto.encrypt("app-password", owner="profile:1")

    assert crypto.decrypt(old_token, owner="profile:1") == "app-password"
    assert not crypto.is_current(old_token)
    assert crypto.is_current(new_token)
    Fernet(new).decrypt(new_token.encode())  # under the new key alone


def test_it_refuses_to_encrypt_without_keys(settings):
    settings.ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("app-password", owner="profile:1")


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ([], "ENCRYPTION_KEYS is not set."),
        (["not-a-key"], "Key 1 in ENCRYPTION_KEYS is not a Fernet key"),
        ([Fernet.generate_key().decode(), "short"], "Key 2 in ENCRYPTION_KEYS"),
    ],
)
def test_it_describes_unusable_keys(settings, keys, problem):
    settings.ENCRYPTION_KEYS = keys
    assert crypto.keys_problem().startswith(problem)
