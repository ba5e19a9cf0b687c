# The commands people type. `make run` and `make test` work on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench lint format

$(VENV)/installed: pyproject.toml
	@python=$$(devtools/find-python) && echo "Using $$python" && $$python -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

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

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
