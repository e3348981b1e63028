"""capture 0009 folds the meeting rows that were one per message into one per UID: the highest
SEQUENCE keeps its state, every message keeps a MeetingMessage row, a row without a UID gets
one of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("capture", "0008_categories_timeline")]
AFTER = [("capture", "0009_meetings_by_uid")]
WHEN = datetime(2025, 3, 1, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_meetings_of_one_uid_are_folded_into_one_record_with_every_message():
    apps = migrate(BEFORE)
    Thread = apps.get_model("capture", "Thread")
    Email = apps.get_model("capture", "EmailMessage")
    OldMeeting = apps.get_model("capture", "Meeting")
    thread = Thread.objects.create(subject="Sync")
    emails = [
        Email.objects.create(message_id=f"m{i}@example.com", thread=thread, date=WHEN)
        for i in range(4)
    ]
    OldMeeting.objects.create(email=emails[0], uid="u1", sequence=0, summary="Old time")
    OldMeeting.objects.create(email=emails[1], uid="u1", sequence=2, summary="New time")
    OldMeeting.objects.create(email=emails[2], uid="u1", sequence=1, summary="Middle")
    OldMeeting.objects.create(email=emails[3], uid="", sequence=0, summary="No UID")
    try:
        apps = migrate(AFTER)
        Meeting = apps.get_model("capture", "Meeting")
        MeetingMessage = apps.get_model("capture", "MeetingMessage")
        assert Meeting.objects.count() == 2
        kept = Meeting.objects.get(uid="u1")
        assert (kept.summary, kept.sequence) == ("New time", 2)
        links = MeetingMessage.objects.filter(meeting=kept)
        assert sorted(links.values_list("email_id", "applied")) == [
            (emails[0].pk, False),
            (emails[1].pk, True),
            (emails[2].pk, False),
        ]
        lone = Meeting.objects.exclude(uid="u1").get()
        assert lone.uid == f"mailwarden-no-uid-email-{emails[3].pk}"
        assert MeetingMessage.objects.filter(meeting=lone, email_id=emails[3].pk).exists()
    finally:
        migrate(executor_leaf())


def executor_leaf():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
