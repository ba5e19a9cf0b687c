import os

from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientmanager.settings")

application = get_wsgi_application()

# Refuse to serve with a configuration error (a missing encryption key, say), as manage.py does.
call_command("check", fail_level="ERROR")
