from django.urls import path

from settings_app import views

app_name = "settings_app"

urlpatterns = [
    path("", views.show, name="show"),
    path("edit/", views.edit, name="edit"),
    path("microsoft/connect/", views.microsoft_connect, name="microsoft_connect"),
    path("microsoft/callback/", views.microsoft_callback, name="microsoft_callback"),
    path("microsoft/disconnect/", views.microsoft_disconnect, name="microsoft_disconnect"),
]
