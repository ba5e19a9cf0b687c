from django.urls import path

from settings_app import views

app_name = "settings_app"

urlpatterns = [
    path("", views.show, name="show"),
    path("edit/", views.edit, name="edit"),
]
