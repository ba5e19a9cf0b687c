# The commands people type. `make run` and `make test` work on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python

LOCK := requirements/lock.txt

.PHONY: run test bench screenshots lint format lock upgrade

# Installs exactly the versions in the lock, each checked against its hash, with nothing
# resolved at install time: CI, production and every developer run the same packages.
$(VENV)/installed: $(LOCK)
	@python=$$(devtools/find-python) && echo "Using $$python" && $$python -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	touch $@

# Re-resolves the lock from pyproject.toml for Python 3.12+ on any platform: `make lock`
# after changing a dependency (other pins stay), `make upgrade` to take the newest allowed.
# An unchanged result leaves the lock untouched, so nothing is reinstalled.
LOCK_COMMAND = cp $(LOCK) $(LOCK).new && $(PY) -m uv pip compile pyproject.toml --extra dev \
	--universal --python-version 3.12 --generate-hashes --custom-compile-command "make lock" \
	--quiet --output-file $(LOCK).new

lock: $(VENV)/installed
	$(LOCK_COMMAND)
	cmp -s $(LOCK).new $(LOCK) && rm $(LOCK).new || mv $(LOCK).new $(LOCK)
	$(MAKE) $(VENV)/installed

upgrade: $(VENV)/installed
	$(LOCK_COMMAND) --upgrade
	cmp -s $(LOCK).new $(LOCK) && rm $(LOCK).new || mv $(LOCK).new $(LOCK)
	$(MAKE) $(VENV)/installed

run: $(VENV)/installed
	$(PY) -m devtools.run

node_modules/axe-core/axe.min.js: package.json package-lock.json
	command -v npm >/dev/null || devtools/system-packages nodejs npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Tests use the local PostgreSQL when it answers (as in CI), else SQLite; DATABASE_URL wins.
# They run a real Dovecot, a real Postfix (sending) and Debian's Chromium, installed when
# missing (never a downloaded browser), and axe-core from npm.
test: $(VENV)/installed node_modules/axe-core/axe.min.js
	devtools/system-packages dovecot-imapd dovecot-lmtpd postfix chromium chromium-driver
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=$${DATABASE_URL:-$$($(PY) -m devtools.test_database)} $(PY) -m pytest

# Measures Webmail against bare IMAP and SMTP scripts on PostgreSQL, Dovecot and Postfix; see README.
bench: $(VENV)/installed
	devtools/system-packages dovecot-imapd dovecot-lmtpd postfix
	$(PY) -m devtools.bench

# Takes the help page's pictures again from the real pages (Chromium and PostgreSQL as in
# `make test`) and saves them under static/img/help/; commit them with the page change.
screenshots: $(VENV)/installed
	devtools/system-packages chromium
	HELP_PICTURES=write DATABASE_URL=$${DATABASE_URL:-$$($(PY) -m devtools.test_database)} \
		$(PY) -m pytest tests/browser/test_help_pictures.py -q -p no:cacheprovider

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
