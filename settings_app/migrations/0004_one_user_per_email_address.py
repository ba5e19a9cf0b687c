"""One user per email address, whatever its case, for PostgreSQL and SQLite alike.

auth_user belongs to Django, so the index is made here with SQL both databases accept: a unique
index on lower(email) for non-blank addresses (users without an address stay allowed). A database
that already has two users sharing an address is left without the index rather than failing the
deploy: the forms still refuse new duplicates, and the `settings_app.W002` check names the shared
addresses until they are fixed and this migration is run again.
"""

from django.db import migrations

INDEX = "settings_app_user_email_ci_unique"


def duplicate_addresses(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lower(email) FROM auth_user WHERE email <> '' "
            "GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def create_index(apps, schema_editor):
    duplicates = duplicate_addresses(schema_editor.connection)
    if duplicates:
        print(
            f"\n  Not adding the one-user-per-address index: {len(duplicates)} address(es) belong "
            "to several users. Give each user their own address in the admin, then run "
            "`manage.py migrate settings_app 0003 && manage.py migrate settings_app`."
        )
        return
    schema_editor.execute(
        f"CREATE UNIQUE INDEX {INDEX} ON auth_user (lower(email)) WHERE email <> ''"
    )


def drop_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('settings_app', '0003_automatic_needs_a_saved_password'),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
