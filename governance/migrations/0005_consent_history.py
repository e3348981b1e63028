"""The legal-basis and consent history (governance.ConsentRecord), append-only.

On PostgreSQL a trigger refuses UPDATE always and DELETE unless the transaction has said
`SET LOCAL mailwarden.consent_erasure = 'on'` (the data-subject erasure service, later: the
history is evidence, so only erasure of the person may remove it). Like the audit log's
trigger (0002), TRUNCATE is not trapped (the test flush truncates).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION governance_consent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('mailwarden.consent_erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'consent history is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS governance_consent_append_only ON governance_consentrecord;
CREATE TRIGGER governance_consent_append_only
    BEFORE UPDATE OR DELETE ON governance_consentrecord
    FOR EACH ROW EXECUTE FUNCTION governance_consent_append_only();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS governance_consent_append_only ON governance_consentrecord;
DROP FUNCTION IF EXISTS governance_consent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("governance", "0004_auditevent_action_index_without_like"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsentRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        choices=[
                            ("processing", "Processing (logging mail: legal basis)"),
                            ("tracking", "Tracking (opens and clicks)"),
                        ],
                        default="processing",
                        max_length=12,
                    ),
                ),
                (
                    "basis",
                    models.CharField(
                        choices=[
                            ("consent", "Consent (Art. 6(1)(a))"),
                            ("contract", "Performance of a contract (Art. 6(1)(b))"),
                            ("legal_obligation", "Legal obligation (Art. 6(1)(c))"),
                            ("vital_interests", "Vital interests (Art. 6(1)(d))"),
                            ("public_task", "Public task (Art. 6(1)(e))"),
                            (
                                "legitimate_interest_prospect",
                                "Legitimate interest: prospect (Art. 6(1)(f))",
                            ),
                            (
                                "legitimate_interest_customer",
                                "Legitimate interest: existing customer (Art. 6(1)(f))",
                            ),
                            ("none", "No legal basis"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("granted", "Granted"),
                            ("withdrawn", "Withdrawn"),
                            ("refused", "Refused"),
                        ],
                        default="granted",
                        max_length=10,
                    ),
                ),
                ("effective_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "recorded_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "recorded_by_label",
                    models.CharField(
                        blank=True,
                        editable=False,
                        help_text="The user or API token.",
                        max_length=200,
                    ),
                ),
                (
                    "channel",
                    models.CharField(
                        choices=[
                            ("admin", "Admin"),
                            ("api", "API"),
                            ("import", "Import"),
                            ("capture", "Capture"),
                            ("dsr", "Data-subject request"),
                        ],
                        editable=False,
                        max_length=10,
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        blank=True,
                        help_text="Where it came from: a form, a call, a contract.",
                        max_length=200,
                    ),
                ),
                ("evidence_text", models.TextField(blank=True, max_length=10000)),
                (
                    "evidence_file",
                    models.FileField(
                        blank=True, max_length=255, upload_to="consent-evidence/%Y/%m/"
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="crm.contact",
                    ),
                ),
                (
                    "recorded_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["contact", "purpose", "effective_at"], name="gov_consent_current"
                    ),
                    models.Index(fields=["effective_at"], name="gov_consent_effective"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("purpose", "tracking"), _negated=True),
                            ("basis", "consent"),
                            _connector="OR",
                        ),
                        name="gov_consent_tracking_is_consent",
                    )
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
