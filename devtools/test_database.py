"""Print the database URL for the tests: the local PostgreSQL when it answers, else SQLite."""

import psycopg

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/clientmanager"


def main() -> None:
    try:
        psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3
        ).close()
    except psycopg.Error:
        print("sqlite:///:memory:")
    else:
        print(POSTGRES_URL)


if __name__ == "__main__":
    main()
