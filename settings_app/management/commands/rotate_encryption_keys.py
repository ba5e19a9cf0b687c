from django.core.management.base import BaseCommand, CommandError

from settings_app import connection, crypto, services
from webmail.services import session_tokens_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key in ENCRYPTION_KEYS. "
        "Safe to interrupt and to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        problem = crypto.keys_problem()
        if problem:
            raise CommandError(problem)
        saved = services.profile_tokens_rotate(batch_size=batch_size)
        sessions = session_tokens_rotate()
        connections = connection.tokens_rotate(batch_size=batch_size)
        parts = (saved, sessions, connections)
        result = services.RotationResult(
            rotated=sum(part.rotated for part in parts),
            current=sum(part.current for part in parts),
            unreadable=sum(part.unreadable for part in parts),
        )
        self.stdout.write(
            f"Rotated {result.rotated} secret(s); {result.current} already used the first key."
        )
        if result.unreadable:
            self.stderr.write(
                f"{result.unreadable} secret(s) could not be read with any configured key and "
                "were left as they are; their owners must enter them again."
            )
