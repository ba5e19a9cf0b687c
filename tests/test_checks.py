"""Start-up refuses missing or malformed encryption keys (`manage.py check`, clean environment)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent


def check(tmp_path, **variables):
    # Every variable the checks read is set here: a developer's own .env is read only for
    # variables the environment does not have, so it cannot leak in.
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "check-tests",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DEBUG": "false",
        "ENCRYPTION_KEYS": "",
        "ENCRYPTION_KEYS_FILE": "",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_stops_without_a_key_when_debug_is_off(tmp_path):
    result = check(tmp_path)
    assert result.returncode != 0
    assert "settings_app.E001" in result.stderr
    assert "ENCRYPTION_KEYS is not set." in result.stderr


def test_it_stops_on_a_malformed_key(tmp_path):
    result = check(tmp_path, ENCRYPTION_KEYS="definitely-not-a-fernet-key")
    assert result.returncode != 0
    assert "Key 1 in ENCRYPTION_KEYS is not a Fernet key" in result.stderr


def test_it_stops_on_a_malformed_key_even_with_debug_on(tmp_path):
    result = check(tmp_path, DEBUG="true", ENCRYPTION_KEYS="nope")
    assert result.returncode != 0


def test_it_only_warns_without_a_key_when_debug_is_on(tmp_path):
    result = check(tmp_path, DEBUG="true")
    assert result.returncode == 0
    assert "settings_app.W001" in result.stderr


def test_it_starts_with_good_keys(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    result = check(tmp_path, ENCRYPTION_KEYS=keys)
    assert result.returncode == 0, result.stderr


def test_it_reads_keys_from_a_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(Fernet.generate_key().decode() + "\n" + Fernet.generate_key().decode())
    result = check(tmp_path, ENCRYPTION_KEYS_FILE=str(key_file))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("contents", [None, ""])
def test_it_stops_on_a_missing_or_empty_key_file(tmp_path, contents):
    key_file = tmp_path / "keys"
    if contents is not None:
        key_file.write_text(contents)
    result = check(tmp_path, ENCRYPTION_KEYS_FILE=str(key_file))
    assert result.returncode != 0
    assert "settings_app.E002" in result.stderr


def test_it_stops_when_microsoft_is_on_without_a_secret(tmp_path):
    result = check(
        tmp_path,
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MICROSOFT_CLIENT_ID="11111111-2222-3333-4444-555555555555",
        MICROSOFT_CLIENT_SECRET="",
        MICROSOFT_CLIENT_SECRET_FILE=str(tmp_path / "missing"),
    )
    assert result.returncode != 0
    assert "settings_app.E003" in result.stderr


def test_it_starts_with_microsoft_configured(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("client-secret\n")
    result = check(
        tmp_path,
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MICROSOFT_CLIENT_ID="11111111-2222-3333-4444-555555555555",
        MICROSOFT_CLIENT_SECRET="",
        MICROSOFT_CLIENT_SECRET_FILE=str(secret),
    )
    assert result.returncode == 0, result.stderr
