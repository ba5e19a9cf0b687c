from django.apps import AppConfig


class SettingsAppConfig(AppConfig):
    name = "settings_app"
    verbose_name = "Settings"

    def ready(self):
        from settings_app import checks  # noqa: F401  (registers the checks)
