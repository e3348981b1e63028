"""On PostgreSQL the audit table refuses UPDATE and DELETE.

The one UPDATE allowed is the sealer's: filling seal_seq/prev_hash/hash on a row that was
never sealed, with every other column unchanged. Retention of the audit log itself (later)
will delete old segments only with `SET LOCAL mailwarden.audit_retention = 'on'` inside its
own transaction, after recording an AuditAnchor.

TRUNCATE is not trapped (Django's test flush truncates every table); in production the
application's role should not own the table, so it cannot TRUNCATE (docs/operations.md).
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('mailwarden.audit_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit log is append-only: DELETE refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.seal_seq IS NULL AND NEW.seal_seq IS NOT NULL
       AND NEW.id = OLD.id AND NEW.created = OLD.created
       AND NEW.actor_type = OLD.actor_type
       AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id
       AND NEW.actor_label = OLD.actor_label AND NEW.action = OLD.action
       AND NEW.object_type = OLD.object_type AND NEW.object_id = OLD.object_id
       AND NEW.channel = OLD.channel AND NEW.address = OLD.address
       AND NEW.detail::jsonb = OLD.detail::jsonb THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: UPDATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS governance_audit_append_only ON governance_auditevent;
CREATE TRIGGER governance_audit_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS governance_audit_append_only ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
