"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py clientmanager.wsgi`."""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Threads let one worker serve other requests while some wait on a mail server.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Longer than WEBMAIL_IMAP_TIMEOUT, so a slow mail server gets its own clear error page first.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
# The app logs one line per request itself (with its request id); gunicorn logs only problems.
accesslog = None
errorlog = "-"
# Addresses of proxies whose X-Forwarded-Proto is believed (see SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
