"""Meetings become records keyed by their iCalendar UID (capture/meetings.py): the rows that
were one per message are folded into one per UID (the highest SEQUENCE, then the newest row,
keeps its state) and every message that carried it gets a MeetingMessage row."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def meetings_by_uid(apps, schema_editor):
    Meeting = apps.get_model("capture", "Meeting")
    MeetingMessage = apps.get_model("capture", "MeetingMessage")
    kept: dict[str, int] = {}
    links, drop = [], []
    rows = Meeting.objects.order_by("uid", "-sequence", "-id").values_list(
        "id", "uid", "email_id", "method", "sequence"
    )
    for pk, uid, email_id, method, sequence in rows.iterator(chunk_size=2000):
        if not uid:
            uid = f"mailwarden-no-uid-email-{email_id}"
            Meeting.objects.filter(pk=pk).update(uid=uid)
        owner = kept.setdefault(uid, pk)
        links.append(
            MeetingMessage(
                meeting_id=owner,
                email_id=email_id,
                method=method,
                sequence=sequence,
                applied=owner == pk,
            )
        )
        if owner != pk:
            drop.append(pk)
        if len(links) >= 2000:
            MeetingMessage.objects.bulk_create(links)
            links = []
    MeetingMessage.objects.bulk_create(links)
    for start in range(0, len(drop), 2000):
        Meeting.objects.filter(pk__in=drop[start : start + 2000]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("capture", "0008_categories_timeline"),
    ]

    operations = [
        migrations.CreateModel(
            name="MeetingOverride",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("recurrence_id", models.DateTimeField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("confirmed", "Confirmed"),
                            ("tentative", "Tentative"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="confirmed",
                        max_length=10,
                    ),
                ),
                ("summary", models.TextField(blank=True)),
                ("location", models.TextField(blank=True)),
                ("start", models.DateTimeField(blank=True, null=True)),
                ("end", models.DateTimeField(blank=True, null=True)),
                ("sequence", models.IntegerField(default=0)),
                ("dtstamp", models.DateTimeField(blank=True, null=True)),
                ("timing", models.TextField(blank=True)),
            ],
        ),
        migrations.AddField(
            model_name="meeting",
            name="created",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddField(
            model_name="meeting",
            name="dtstamp",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="meeting",
            name="exdate",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="meeting",
            name="rdate",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="meeting",
            name="status",
            field=models.CharField(
                choices=[
                    ("confirmed", "Confirmed"),
                    ("tentative", "Tentative"),
                    ("cancelled", "Cancelled"),
                ],
                default="confirmed",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="meeting",
            name="timezone",
            field=models.CharField(blank=True, help_text="TZID of the start.", max_length=64),
        ),
        migrations.AddField(
            model_name="meeting",
            name="timing",
            field=models.TextField(
                blank=True,
                help_text="iCalendar text of the series' timing (no summary, location or people).",
            ),
        ),
        migrations.AddField(
            model_name="meeting",
            name="updated",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AlterField(
            model_name="meeting",
            name="method",
            field=models.CharField(
                blank=True, help_text="Of the message that set it.", max_length=20
            ),
        ),
        migrations.AlterField(
            model_name="meeting",
            name="uid",
            field=models.CharField(max_length=255),
        ),
        migrations.CreateModel(
            name="MeetingMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("method", models.CharField(blank=True, max_length=20)),
                ("sequence", models.IntegerField(default=0)),
                (
                    "recurrence_id",
                    models.DateTimeField(
                        blank=True,
                        help_text="Set when the message was about one occurrence only.",
                        null=True,
                    ),
                ),
                (
                    "applied",
                    models.BooleanField(
                        default=True, help_text="False when older than the state already stored."
                    ),
                ),
                (
                    "email",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="meeting_messages",
                        to="capture.emailmessage",
                    ),
                ),
                (
                    "meeting",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="capture.meeting",
                    ),
                ),
            ],
        ),
        migrations.RunPython(meetings_by_uid, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="meeting",
            name="email",
        ),
        migrations.AddField(
            model_name="meeting",
            name="emails",
            field=models.ManyToManyField(
                blank=True,
                related_name="meetings",
                through="capture.MeetingMessage",
                to="capture.emailmessage",
            ),
        ),
        migrations.AddIndex(
            model_name="meeting",
            index=models.Index(fields=["start"], name="cap_meeting_start"),
        ),
        migrations.AddConstraint(
            model_name="meeting",
            constraint=models.UniqueConstraint(fields=("uid",), name="cap_meeting_uid_unique"),
        ),
        migrations.AddField(
            model_name="meetingoverride",
            name="meeting",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="overrides",
                to="capture.meeting",
            ),
        ),
        migrations.AddIndex(
            model_name="meetingmessage",
            index=models.Index(fields=["email"], name="cap_meeting_message_email"),
        ),
        migrations.AddConstraint(
            model_name="meetingmessage",
            constraint=models.UniqueConstraint(
                fields=("meeting", "email"), name="cap_meeting_message_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="meetingoverride",
            constraint=models.UniqueConstraint(
                fields=("meeting", "recurrence_id"), name="cap_meeting_override_unique"
            ),
        ),
    ]
