from django.urls import path, register_converter

from webmail import compose_views, views


class UidConverter:
    """An IMAP UID: a non-zero 32-bit number (RFC 3501 2.3.1.1); anything else is a 404."""

    regex = "[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        uid = int(value)
        if not 0 < uid < 2**32:
            raise ValueError(value)  # no match: Django answers 404
        return uid

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(UidConverter, "uid")

app_name = "webmail"

urlpatterns = [
    path("", views.open_webmail, name="open"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("actions/", views.act, name="act"),
    path("message/<uid:uid>/", views.message, name="message"),
    path("message/<uid:uid>/body/", views.body, name="body"),
    path("message/<uid:uid>/source/", views.source, name="source"),
    path("message/<uid:uid>/part/<str:part>/", views.attachment, name="attachment"),
    # New mail without a reload, and stepping through messages (issue 13)
    path("news/", views.news, name="news"),
    path("message/<uid:uid>/step/", views.step, name="step"),
    # Writing mail
    path("compose/", compose_views.compose, name="compose"),
    path("message/<uid:uid>/reply/", compose_views.answer, {"kind": "reply"}, name="reply"),
    path(
        "message/<uid:uid>/reply-all/",
        compose_views.answer,
        {"kind": "reply-all"},
        name="reply_all",
    ),
    path("message/<uid:uid>/forward/", compose_views.answer, {"kind": "forward"}, name="forward"),
]
