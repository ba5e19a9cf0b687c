"""`make run`: prepare a local configuration, migrate, and serve on http://127.0.0.1:8000."""

import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"
ADDRESS = "127.0.0.1:8000"


def read_env_file() -> dict[str, str]:
    values = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            name, separator, value = line.partition("=")
            if separator and not name.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def ensure_local_env() -> None:
    """Write a .env for local use once: DEBUG on, a random SECRET_KEY and an encryption key."""
    values = read_env_file()
    additions = {}
    if not ENV_FILE.exists():
        additions["DEBUG"] = "true"
    if not values.get("SECRET_KEY"):
        additions["SECRET_KEY"] = secrets.token_urlsafe(50)
    if not values.get("ENCRYPTION_KEYS") and not values.get("ENCRYPTION_KEYS_FILE"):
        additions["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if not additions:
        return
    lines = [f"{name}={value}" for name, value in additions.items()]
    with ENV_FILE.open("a") as env_file:
        env_file.write("\n".join(["# Written by make run for local use.", *lines, ""]))
    print(f"Wrote {', '.join(additions)} to {ENV_FILE} (local use only; keep this file private).")
    if "ENCRYPTION_KEYS" in additions:
        print("A new encryption key was generated: email passwords saved here need it to be read.")


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def main() -> None:
    ensure_local_env()
    manage("migrate", "--no-input")
    print(
        "\nClient Manager is starting on http://" + ADDRESS + "/\n"
        "First time? Create an admin in another terminal with:\n"
        "    .venv/bin/python manage.py createsuperuser\n"
        "then sign in at http://" + ADDRESS + "/admin/ to add staff users.\n"
    )
    try:
        manage("runserver", ADDRESS)
    except KeyboardInterrupt:
        print("\nStopped.")


if __name__ == "__main__":
    main()
