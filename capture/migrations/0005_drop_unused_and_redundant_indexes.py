"""Drop indexes that every captured message pays for on insert and no query uses.

- varchar_pattern_ops "_like" indexes PostgreSQL gets for `unique=True` / `db_index=True`
  CharFields (message_id, from_address, Blob.sha256, Meeting.uid, MessageRef.ref,
  Participant.address, RawMessage.sha256): they only serve LIKE 'prefix%' / __startswith,
  and no code queries these columns that way. The plain index (or unique constraint) stays
  where a query uses it, now declared in Meta so Django builds no "_like" twin.
- Single-column foreign-key indexes whose column leads another index on the table
  (EmailMessage.thread_id: cap_email_thread_date; MessageRef.email_id: cap_messageref_unique;
  ThreadLink.thread_id: the cap_threadlink_* unique constraints).
- Indexes nothing reads: EmailMessage.from_address (only __icontains / __iexact searches,
  which a btree cannot serve), EmailMessage.expires_at (nothing sets or reads it yet),
  Meeting.uid (nothing looks meetings up by uid).

The model state changes exactly as makemigrations wrote it. On PostgreSQL the database work is
done by the statements below instead of Django's own (which would drop and rebuild each kept
index under a lock, and drop and re-validate the altered foreign keys): only DROP INDEX and
renames, all catalog-only, nothing is built, so running without CONCURRENTLY is fine on big
tables (each statement briefly takes its table's lock). Reversing builds the dropped indexes
again (plain CREATE INDEX: it blocks writes to the table while it runs). Other databases
(SQLite: tests, the embedded mode) get Django's operations.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from governance.migration_operations import PostgresSQLElseOperations


class Migration(migrations.Migration):
    dependencies = [
        ("capture", "0004_emailmessage_lz4_bodies"),
        ("crm", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    # reverse_sql lists are in forward order (undoing sql[i] is reverse_sql[i]); they run
    # backwards.
    operations = [
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="emailmessage",
                    name="message_id",
                    field=models.CharField(max_length=995),
                ),
                migrations.AddConstraint(
                    model_name="emailmessage",
                    constraint=models.UniqueConstraint(
                        fields=("message_id",), name="cap_email_message_id_unique"
                    ),
                ),
                migrations.AlterField(
                    model_name="emailmessage",
                    name="from_address",
                    field=models.CharField(blank=True, max_length=254),
                ),
                migrations.AlterField(
                    model_name="emailmessage",
                    name="thread",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="capture.thread",
                    ),
                ),
                migrations.AlterField(
                    model_name="emailmessage",
                    name="expires_at",
                    field=models.DateTimeField(blank=True, null=True),
                ),
            ],
            sql=[
                "ALTER TABLE capture_emailmessage RENAME CONSTRAINT"
                " capture_emailmessage_message_id_key TO cap_email_message_id_unique",
                "DROP INDEX capture_emailmessage_message_id_cebd4af3_like",
                "DROP INDEX capture_emailmessage_from_address_e786caa8_like",
                "DROP INDEX capture_emailmessage_from_address_e786caa8",
                "DROP INDEX capture_emailmessage_thread_id_7c6fff8c",
                "DROP INDEX capture_emailmessage_expires_at_570fb2f9",
            ],
            reverse_sql=[
                "ALTER TABLE capture_emailmessage RENAME CONSTRAINT"
                " cap_email_message_id_unique TO capture_emailmessage_message_id_key",
                "CREATE INDEX capture_emailmessage_message_id_cebd4af3_like"
                " ON capture_emailmessage (message_id varchar_pattern_ops)",
                "CREATE INDEX capture_emailmessage_from_address_e786caa8_like"
                " ON capture_emailmessage (from_address varchar_pattern_ops)",
                "CREATE INDEX capture_emailmessage_from_address_e786caa8"
                " ON capture_emailmessage (from_address)",
                "CREATE INDEX capture_emailmessage_thread_id_7c6fff8c"
                " ON capture_emailmessage (thread_id)",
                "CREATE INDEX capture_emailmessage_expires_at_570fb2f9"
                " ON capture_emailmessage (expires_at)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="blob",
                    name="sha256",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddConstraint(
                    model_name="blob",
                    constraint=models.UniqueConstraint(
                        fields=("sha256",), name="cap_blob_sha256_unique"
                    ),
                ),
            ],
            sql=[
                "ALTER TABLE capture_blob RENAME CONSTRAINT capture_blob_sha256_key"
                " TO cap_blob_sha256_unique",
                "DROP INDEX capture_blob_sha256_4bccc87e_like",
            ],
            reverse_sql=[
                "ALTER TABLE capture_blob RENAME CONSTRAINT cap_blob_sha256_unique"
                " TO capture_blob_sha256_key",
                "CREATE INDEX capture_blob_sha256_4bccc87e_like"
                " ON capture_blob (sha256 varchar_pattern_ops)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="meeting",
                    name="uid",
                    field=models.CharField(blank=True, max_length=255),
                ),
            ],
            sql=[
                "DROP INDEX capture_meeting_uid_7654a394_like",
                "DROP INDEX capture_meeting_uid_7654a394",
            ],
            reverse_sql=[
                "CREATE INDEX capture_meeting_uid_7654a394_like"
                " ON capture_meeting (uid varchar_pattern_ops)",
                "CREATE INDEX capture_meeting_uid_7654a394 ON capture_meeting (uid)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="messageref",
                    name="email",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="refs",
                        to="capture.emailmessage",
                    ),
                ),
                migrations.AlterField(
                    model_name="messageref",
                    name="ref",
                    field=models.CharField(max_length=995),
                ),
                migrations.AddIndex(
                    model_name="messageref",
                    index=models.Index(fields=["ref"], name="cap_messageref_ref"),
                ),
            ],
            sql=[
                "DROP INDEX capture_messageref_email_id_d258a3d0",
                "ALTER INDEX capture_messageref_ref_619f096f RENAME TO cap_messageref_ref",
                "DROP INDEX capture_messageref_ref_619f096f_like",
            ],
            reverse_sql=[
                "CREATE INDEX capture_messageref_email_id_d258a3d0 ON capture_messageref (email_id)",
                "ALTER INDEX cap_messageref_ref RENAME TO capture_messageref_ref_619f096f",
                "CREATE INDEX capture_messageref_ref_619f096f_like"
                " ON capture_messageref (ref varchar_pattern_ops)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="participant",
                    name="address",
                    field=models.CharField(max_length=254),
                ),
                migrations.AddIndex(
                    model_name="participant",
                    index=models.Index(fields=["address"], name="cap_participant_address"),
                ),
            ],
            sql=[
                "ALTER INDEX capture_participant_address_71e1355d"
                " RENAME TO cap_participant_address",
                "DROP INDEX capture_participant_address_71e1355d_like",
            ],
            reverse_sql=[
                "ALTER INDEX cap_participant_address"
                " RENAME TO capture_participant_address_71e1355d",
                "CREATE INDEX capture_participant_address_71e1355d_like"
                " ON capture_participant (address varchar_pattern_ops)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="rawmessage",
                    name="sha256",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddIndex(
                    model_name="rawmessage",
                    index=models.Index(fields=["sha256"], name="cap_raw_sha256"),
                ),
            ],
            sql=[
                "ALTER INDEX capture_rawmessage_sha256_a777201c RENAME TO cap_raw_sha256",
                "DROP INDEX capture_rawmessage_sha256_a777201c_like",
            ],
            reverse_sql=[
                "ALTER INDEX cap_raw_sha256 RENAME TO capture_rawmessage_sha256_a777201c",
                "CREATE INDEX capture_rawmessage_sha256_a777201c_like"
                " ON capture_rawmessage (sha256 varchar_pattern_ops)",
            ],
        ),
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="threadlink",
                    name="thread",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="links",
                        to="capture.thread",
                    ),
                ),
            ],
            sql=["DROP INDEX capture_threadlink_thread_id_24be49d6"],
            reverse_sql=[
                "CREATE INDEX capture_threadlink_thread_id_24be49d6 ON capture_threadlink (thread_id)"
            ],
        ),
    ]
