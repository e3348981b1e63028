"""The pipeline keeps each link's copy of its thread's last date (the timeline's sort key)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capture.models import RawMessage, Thread, ThreadLink
from capture.timeline import timeline_page
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def test_captured_mail_and_a_later_reply_move_the_contacts_link_date():
    contact = make_contact(emails=("tom.buyer@globex.co.uk",))
    _, first = capture(make_mail())
    thread = Thread.objects.get(messages__pk=first.email_id)
    link = ThreadLink.objects.get(thread=thread, contact=contact)
    assert link.last_at == thread.last_at == datetime(2025, 3, 24, 9, 0, tzinfo=UTC)
    reply_date = datetime(2025, 3, 25, 8, 30, tzinfo=UTC)
    capture(
        make_mail(
            message_id="<m2@globex.co.uk>",
            subject="Re: Delivery schedule for April",
            in_reply_to="<m1@globex.co.uk>",
            date=reply_date,
        )
    )
    link.refresh_from_db()
    assert link.last_at == reply_date
    entry = timeline_page(contact, make_user(role="admin")).entries[0]
    assert (entry.thread_id, entry.message_count, entry.email.date) == (thread.pk, 2, reply_date)


def test_a_record_chosen_when_saving_a_logged_mail_again_gets_the_threads_date():
    user = make_user()
    capture(make_mail(), RawMessage.Channel.ADDIN, user_id=user.pk)
    later = make_contact()
    capture(
        make_mail(),
        RawMessage.Channel.ADDIN,
        user_id=user.pk,
        options={"links": {"contacts": [later.pk]}},
    )
    link = ThreadLink.objects.get(contact=later)
    assert link.last_at == datetime(2025, 3, 24, 9, 0, tzinfo=UTC)
    assert [e.thread_id for e in timeline_page(later, user).entries] == [link.thread_id]


def test_a_link_made_by_hand_takes_its_place_on_the_records_timeline():
    from capture.links import Target, link_thread

    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    admin = make_user(role="admin")
    contact = make_contact()
    thread = Thread.objects.create(subject="s", first_at=t0, last_at=t0, owner=admin)
    link = link_thread(
        thread, Target("contact", contact.pk), user=admin, actor=admin, channel="api"
    )
    assert ThreadLink.objects.get(pk=link.pk).last_at == t0
