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


class PostgresSQLElseOperations(migrations.SeparateDatabaseAndState):
    """`operations` change the state everywhere, and the database everywhere but PostgreSQL;
    on PostgreSQL `sql` (forwards) / `reverse_sql` (backwards) change the database instead.
    (The same helper as capture/migrations/0005_drop_unused_and_redundant_indexes.py.)"""

    def __init__(self, operations, sql, reverse_sql):
        super().__init__(database_operations=operations, state_operations=operations)
        self.operations, self.sql, self.reverse_sql = operations, sql, reverse_sql

    def deconstruct(self):
        kwargs = {"operations": self.operations, "sql": self.sql, "reverse_sql": self.reverse_sql}
        return self.__class__.__qualname__, [], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        for statement in self.sql:
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        for statement in reversed(self.reverse_sql):
            schema_editor.execute(statement)

    def describe(self):
        return "Drop unused indexes: " + "; ".join(op.describe() for op in self.operations)


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
