from django.db import migrations, models


def automatic_without_password_becomes_manual(apps, schema_editor):
    # Such rows could not sign in anyway; Manual is what clearing a password leaves behind.
    Profile = apps.get_model("settings_app", "Profile")
    Profile.objects.filter(webmail_access="automatic", email_password_token="").update(
        webmail_access="manual"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('settings_app', '0002_auditevent'),
    ]

    operations = [
        migrations.RunPython(automatic_without_password_becomes_manual, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='profile',
            constraint=models.CheckConstraint(condition=models.Q(('webmail_access', 'manual'), models.Q(('email_password_token', ''), _negated=True), _connector='OR'), name='automatic_needs_a_saved_password', violation_error_message='Automatic sign-in needs a saved email password.'),
        ),
    ]
