from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from settings_app.forms import SettingsForm
from settings_app.models import profile_for


@require_GET
def show(request):
    profile = profile_for(request.user)
    return render(request, "settings_app/show.html", {"profile": profile})


@sensitive_post_parameters("email_password")
@require_http_methods(["GET", "POST"])
def edit(request):
    profile = profile_for(request.user)
    form = SettingsForm(request.POST or None, user=request.user, profile=profile)
    if form.is_valid() and form.save():
        messages.success(request, "Your settings were saved.")
        return redirect("settings_app:show")
    return render(request, "settings_app/edit.html", {"form": form, "profile": profile})


@login_not_required
@require_GET
def help_email_password(request):
    return render(request, "settings_app/help_email_password.html")
