from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out


def _close_mailboxes(sender, request, **kwargs):
    from webmail.pool import pool

    if request is not None and request.user.is_authenticated:
        pool.drop_user(request.user.pk)


class WebmailConfig(AppConfig):
    name = "webmail"
    verbose_name = "Webmail"

    def ready(self):
        from webmail import checks  # noqa: F401  (registers the checks)

        # Signing out of Client Manager also closes the user's idle mail connections.
        user_logged_out.connect(_close_mailboxes, dispatch_uid="webmail-close-mailboxes")
