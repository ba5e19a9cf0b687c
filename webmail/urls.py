from django.urls import path

from webmail import views

app_name = "webmail"

urlpatterns = [
    path("", views.open_webmail, name="open"),
]
