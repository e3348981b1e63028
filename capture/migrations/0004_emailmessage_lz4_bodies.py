"""On PostgreSQL, stored mail bodies and headers are TOAST-compressed with lz4, not pglz.

Why: a captured email's text and HTML bodies (median ~25 KB together) are compressed when the
row is written; PostgreSQL's default pglz costs ~0.25 ms of backend CPU a message more than
lz4 (bench/ingest.py, A/B over batches of 50), and lz4 also decompresses faster when a body
is read. It compresses somewhat less, which mail text tolerates well.

Only new values use the new method; rows already stored keep pglz until rewritten (both are
read transparently). Skipped where lz4 is unavailable (PostgreSQL < 14 or a server built
without it) and on other databases.
"""

from django.db import migrations

TABLE = "capture_emailmessage"
COLUMNS = ("text_body", "html_body", "headers")


def _lz4_available(connection) -> bool:
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _set_compression(schema_editor, method: str) -> None:
    connection = schema_editor.connection
    if not _lz4_available(connection):
        return
    qn = schema_editor.quote_name
    for column in COLUMNS:
        schema_editor.execute(
            f"ALTER TABLE {qn(TABLE)} ALTER COLUMN {qn(column)} SET COMPRESSION {method}"
        )


def forward(apps, schema_editor):
    _set_compression(schema_editor, "lz4")


def backward(apps, schema_editor):
    _set_compression(schema_editor, "DEFAULT")


class Migration(migrations.Migration):
    dependencies = [("capture", "0003_imap_sync_lease")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
