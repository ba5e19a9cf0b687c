import sys

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET


@login_not_required
@require_GET
def livez(request):
    """200 while the process serves requests, touching nothing else: for liveness probes."""
    return HttpResponse("ok\n", content_type="text/plain")


@login_not_required
@require_GET
def healthz(request):
    """200 when the database answers, 503 when it does not: for load balancers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


def server_error(request):
    """A plain page for an unexpected error; 503 when the database is what failed.

    Rendered without the request's context, since the session and user need the database.
    """
    if isinstance(sys.exc_info()[1], DatabaseError):
        status, template = 503, "503.html"
    else:
        status, template = 500, "500.html"
    return HttpResponse(render_to_string(template), status=status)
