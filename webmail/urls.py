from django.urls import path

from webmail import compose_views, views

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
    # Writing mail
    path("compose/", compose_views.compose, name="compose"),
    path("message/<int:uid>/reply/", compose_views.answer, {"kind": "reply"}, name="reply"),
    path(
        "message/<int:uid>/reply-all/",
        compose_views.answer,
        {"kind": "reply-all"},
        name="reply_all",
    ),
    path("message/<int:uid>/forward/", compose_views.answer, {"kind": "forward"}, name="forward"),
]
