from django.urls import path

from webmail import views

app_name = "webmail"

urlpatterns = [
    path("", views.open_webmail, name="open"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("actions/", views.act, name="act"),
    path("message/<int:uid>/", views.message, name="message"),
    path("message/<int:uid>/body/", views.body, name="body"),
    path("message/<int:uid>/source/", views.source, name="source"),
    path("message/<int:uid>/part/<str:part>/", views.attachment, name="attachment"),
    # New mail without a reload, and stepping through messages (issue 13)
    path("news/", views.news, name="news"),
    path("message/<int:uid>/step/", views.step, name="step"),
]
