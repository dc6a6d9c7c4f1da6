import psycopg


def test_fresh_database_is_empty(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select count(*) from pg_tables where schemaname = 'public'"
        ).fetchone()
    assert row == (0,)
