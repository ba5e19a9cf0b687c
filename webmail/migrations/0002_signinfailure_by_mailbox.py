# Sign-in failures are counted per mailbox rather than per app user. The rows only live for a
# few minutes, so the table is made afresh.

from django.db import migrations, models
import django.utils.timezone


class Migration(migrations.Migration):
    dependencies = [
        ("webmail", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="SignInFailure"),
        migrations.CreateModel(
            name="SignInFailure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("mailbox", models.CharField(max_length=320)),
                ("failed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["mailbox", "failed_at"], name="webmail_sig_mailbox_06ac02_idx"
                    )
                ],
            },
        ),
    ]
