from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def open_webmail(request):
    return render(request, "webmail/open.html")
