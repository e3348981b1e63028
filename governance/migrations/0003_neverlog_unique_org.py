"""Org-wide never-log rules (user NULL) were not unique: NULLs are distinct in the
(kind, value, user) constraint. Drop duplicates (keeping the oldest), then add a partial
unique constraint for them."""

from django.conf import settings
from django.db import migrations, models


def drop_duplicate_org_rules(apps, schema_editor):
    NeverLogRule = apps.get_model("governance", "NeverLogRule")
    seen: set[tuple[str, str]] = set()
    duplicates = []
    for pk, kind, value in (
        NeverLogRule.objects.filter(user__isnull=True).order_by("id").values_list("id", "kind", "value")
    ):
        if (kind, value) in seen:
            duplicates.append(pk)
        seen.add((kind, value))
    NeverLogRule.objects.filter(pk__in=duplicates).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0002_audit_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(drop_duplicate_org_rules, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="neverlogrule",
            constraint=models.UniqueConstraint(
                condition=models.Q(("user__isnull", True)),
                fields=("kind", "value"),
                name="gov_neverlog_unique_org",
            ),
        ),
    ]
