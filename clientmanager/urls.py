from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from clientmanager import views
from settings_app import views as settings_views

handler500 = views.server_error

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="settings_app:show"), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/", include("settings_app.urls")),
    path("help/email-password/", settings_views.help_email_password, name="help_email_password"),
    path("webmail/", include("webmail.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
]
