from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from settings_app import connection, microsoft
from settings_app.forms import SettingsForm
from settings_app.models import AuditEvent, profile_for


@require_GET
def show(request):
    profile = profile_for(request.user)
    context = {"profile": profile, "microsoft_configured": microsoft.is_configured()}
    response = render(request, "settings_app/show.html", context)
    if context["microsoft_configured"]:
        microsoft.allow_sign_in_redirect(response)
    return response


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


# Microsoft 365 sign-in ------------------------------------------------------------------------


def _microsoft_problem(request, exc: microsoft.MicrosoftError):
    context = {"title": exc.title, "message": exc.message, "status": exc.status}
    return render(request, "settings_app/microsoft_problem.html", context, status=exc.status)


@require_POST
def microsoft_connect(request):
    """Send the browser to Microsoft to connect the account (or, with purpose=session, to sign
    in to Webmail for this browser session only)."""
    if not microsoft.is_configured():
        raise Http404("Microsoft 365 sign-in is not set up.")
    purpose = "session" if request.POST.get("purpose") == "session" else "connect"
    fallback = reverse("webmail:open" if purpose == "session" else "settings_app:show")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = fallback
    if not request.user.email:
        messages.error(request, "Add your email address before connecting a Microsoft account.")
        return redirect("settings_app:edit")
    try:
        address = connection.sign_in_start(
            request,
            redirect_uri=request.build_absolute_uri(reverse("settings_app:microsoft_callback")),
            purpose=purpose,
            next_url=next_url,
        )
    except microsoft.MicrosoftError as exc:
        return _microsoft_problem(request, exc)
    return redirect(address)


@require_GET
@sensitive_variables("params")
def microsoft_callback(request):
    """Where Microsoft sends the browser back, with a one-time code or an error."""
    if not microsoft.is_configured():
        raise Http404("Microsoft 365 sign-in is not set up.")
    params = request.GET.dict()
    try:
        purpose, next_url = connection.sign_in_finish(request, params)
    except microsoft.MicrosoftError as exc:
        return _microsoft_problem(request, exc)
    if purpose == "connect":
        profile = profile_for(request.user)
        messages.success(
            request, f"Your Microsoft 365 account {profile.microsoft_account} is connected."
        )
    # A redirect, so the code does not stay in the address bar or in a reload.
    return redirect(next_url)


@require_POST
def microsoft_disconnect(request):
    if connection.disconnect(
        actor=request.user, subject=request.user, source=AuditEvent.Source.SETTINGS
    ):
        messages.success(request, "Your Microsoft 365 account is disconnected.")
    return redirect("settings_app:show")
