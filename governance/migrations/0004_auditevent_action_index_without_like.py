"""AuditEvent.action: keep its btree index (the audit API filters on action=), drop the
varchar_pattern_ops "_like" twin PostgreSQL gets for `db_index=True` on a CharField: it only
serves LIKE 'prefix%' / __startswith, which nothing runs on this column, and every audit event
paid for it on insert. The index is now declared in Meta (gov_audit_action).

On PostgreSQL the kept index is renamed and the "_like" one dropped (catalog-only: nothing is
built, so no CONCURRENTLY is needed); Django's own operations would drop and rebuild the index.
Reversing builds the "_like" index again (plain CREATE INDEX: it blocks writes while it runs,
which the append-only audit table otherwise never needs). Other databases get Django's
operations.
"""

from django.conf import settings
from django.db import migrations, models

from governance.migration_operations import PostgresSQLElseOperations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_neverlog_unique_org"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        PostgresSQLElseOperations(
            operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="action",
                    field=models.CharField(max_length=60),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["action"], name="gov_audit_action"),
                ),
            ],
            sql=[
                "ALTER INDEX governance_auditevent_action_9925d39d RENAME TO gov_audit_action",
                "DROP INDEX governance_auditevent_action_9925d39d_like",
            ],
            # Undoing sql[i] is reverse_sql[i]; they run backwards.
            reverse_sql=[
                "ALTER INDEX gov_audit_action RENAME TO governance_auditevent_action_9925d39d",
                "CREATE INDEX governance_auditevent_action_9925d39d_like"
                " ON governance_auditevent (action varchar_pattern_ops)",
            ],
        ),
    ]
