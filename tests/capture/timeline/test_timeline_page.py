"""capture.timeline.timeline_page: one entry a thread, newest first, cursor pages, what the
viewer may see, the organization's contacts' mail, meetings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from capture.models import EmailMessage, ThreadLink
from capture.timeline import TimelineRejected, timeline_page
from tests.capture.timeline.conftest import T0, make_thread
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db


def thread_ids(page) -> list[int]:
    return [e.thread_id for e in page.entries]


def test_each_thread_is_one_entry_shown_by_its_newest_message_newest_thread_first():
    admin = make_user(role="admin")
    contact = make_contact()
    old = make_thread(contact, n=3, start=T0)
    new = make_thread(contact, n=2, start=T0 + timedelta(days=1))
    page = timeline_page(contact, admin)
    assert thread_ids(page) == [new.pk, old.pk]
    first = page.entries[0]
    assert first.message_count == 2
    assert first.thread_subject == new.subject
    assert first.email.subject == f"{new.subject} #2"
    assert first.email.date == T0 + timedelta(days=1, hours=1)
    assert page.next_cursor is None


def test_a_thread_with_a_newer_reply_moves_ahead_of_a_newer_started_thread():
    admin = make_user(role="admin")
    contact = make_contact()
    long_running = make_thread(contact, n=50, start=T0)  # last message 49 hours later
    newer_start = make_thread(contact, n=1, start=T0 + timedelta(hours=10))
    assert thread_ids(timeline_page(contact, admin)) == [long_running.pk, newer_start.pk]


def test_following_the_cursor_lists_every_thread_once_in_order():
    admin = make_user(role="admin")
    item = make_item()
    threads = [make_thread(item, start=T0 + timedelta(minutes=i)) for i in range(7)]
    # two threads with the same last date: the thread id breaks the tie
    threads.append(make_thread(item, start=T0 + timedelta(minutes=6)))
    seen, cursor, pages = [], None, 0
    while True:
        page = timeline_page(item, admin, cursor, size=3)
        seen += thread_ids(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = sorted(threads, key=lambda t: (t.last_at, t.pk), reverse=True)
    assert seen == [t.pk for t in expected]
    assert pages == 3


def test_an_organization_shows_mail_linked_to_its_contacts_once_per_thread():
    admin = make_user(role="admin")
    org = make_organization()
    jane = make_contact(organization=org)
    joe = make_contact(organization=org)
    outsider = make_contact()
    both = make_thread(org, jane, start=T0)
    via_joe = make_thread(joe, start=T0 + timedelta(days=1))
    elsewhere = make_thread(outsider, start=T0 + timedelta(days=2))
    ids = thread_ids(timeline_page(org, admin))
    assert ids == [via_joe.pk, both.pk]
    assert elsewhere.pk not in ids


def test_an_organizations_pages_do_not_repeat_or_skip_threads_across_its_contacts():
    admin = make_user(role="admin")
    org = make_organization()
    contacts = [make_contact(organization=org) for _ in range(3)]
    threads = [
        make_thread(contacts[i % 3], *([org] if i % 2 else []), start=T0 + timedelta(hours=i))
        for i in range(10)
    ]
    seen, cursor = [], None
    while True:
        page = timeline_page(org, admin, cursor, size=4)
        seen += thread_ids(page)
        if not (cursor := page.next_cursor):
            break
    assert seen == [t.pk for t in reversed(threads)]


def test_a_member_sees_only_the_threads_they_may_see():
    alice, bob = make_user(), make_user()
    contact = make_contact()
    mine = make_thread(contact, owner=alice, start=T0)
    theirs = make_thread(contact, owner=bob, start=T0 + timedelta(days=1))
    assert thread_ids(timeline_page(contact, alice)) == [mine.pk]
    assert thread_ids(timeline_page(contact, bob)) == [theirs.pk]
    assert thread_ids(timeline_page(contact, make_user(role="admin"))) == [theirs.pk, mine.pk]


def test_a_private_thread_is_hidden_from_other_members_but_not_from_compliance():
    owner = make_user()
    contact = make_contact()
    make_thread(contact, owner=owner, private=True)
    assert timeline_page(contact, make_user(role="compliance")).entries
    assert timeline_page(contact, make_user()).entries == []


def test_a_meeting_entry_carries_the_meetings_summary_and_times():
    admin = make_user(role="admin")
    contact = make_contact()
    make_thread(contact, kind=EmailMessage.Kind.MEETING)
    entry = timeline_page(contact, admin).entries[0]
    assert entry.email.kind == EmailMessage.Kind.MEETING
    assert entry.meeting.summary == "Quarterly review"
    assert entry.meeting.start == T0 + timedelta(days=7)
    assert entry.meeting.end == T0 + timedelta(days=7, hours=1)


def test_an_ordinary_message_has_no_meeting():
    contact = make_contact()
    make_thread(contact)
    assert timeline_page(contact, make_user(role="admin")).entries[0].meeting is None


def test_a_cursor_that_was_not_issued_and_a_size_out_of_range_are_rejected():
    contact = make_contact()
    admin = make_user(role="admin")
    with pytest.raises(TimelineRejected) as bad_cursor:
        timeline_page(contact, admin, "not-a-cursor")
    assert bad_cursor.value.code == "bad_cursor"
    with pytest.raises(TimelineRejected) as bad_size:
        timeline_page(contact, admin, size=0)
    assert bad_size.value.code == "bad_size"


def test_links_carry_their_threads_last_date_after_new_mail_joins_the_thread():
    contact = make_contact()
    thread = make_thread(contact, n=1, start=T0)
    link = ThreadLink.objects.get(thread=thread)
    assert link.last_at == T0
    later = make_thread(contact, n=1, start=T0 + timedelta(days=3))
    EmailMessage.objects.filter(thread=later).update(thread=thread)
    from capture.pipeline import refresh_thread_stats

    refresh_thread_stats({thread.pk})
    link.refresh_from_db()
    assert link.last_at == T0 + timedelta(days=3)
