"""Property: whatever a sender does to a message, the pipeline ends it `processed` or
`rejected` with a reason code; never `failed`, never an exception, never a traceback.

Mutants of the real fixtures (tests/capture/fuzz/mutations.py) go the whole way: the raw
store, then processing, on PostgreSQL (which refuses text SQLite would take). Bounded in
`make test` (25 reproducible examples a test); `make fuzz` runs 2,000 random ones a test and
prints the peak memory per message (tests/capture/fuzz/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from capture.intake import RawSpec, store_raw_messages
from capture.models import (
    Attachment,
    EmailMessage,
    Meeting,
    MeetingMessage,
    MeetingOverride,
    MessageRef,
    Participant,
    RawMessage,
    ReviewItem,
    Thread,
    ThreadLink,
)
from capture.pipeline import process_raw_messages
from tests.capture.fuzz import mutations as m
from tests.factories import make_capture_address, make_user

pytestmark = [pytest.mark.fuzz, pytest.mark.postgres, pytest.mark.django_db]

Status = RawMessage.Status


@contextmanager
def rolled_back() -> Iterator[None]:
    """One example's rows are gone before the next (the test's own transaction stays)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def store_all(specs: list[RawSpec]) -> list[RawMessage]:
    return store_raw_messages(specs, fsync=False, enqueue=False)


def assert_settled(raws: list[RawMessage]) -> None:
    """Every raw message ended processed (with its email) or rejected with a reason code."""
    for raw in raws:
        raw.refresh_from_db()
        detail = (raw.reason_code, raw.reason_detail, raw.traceback[-3000:])
        assert raw.status in (Status.PROCESSED, Status.REJECTED), detail
        assert raw.traceback == "", detail
        if raw.status == Status.PROCESSED:
            assert raw.email_id is not None
            read_back(raw.email_id)
        else:
            assert raw.reason_code, detail


def read_back(email_id: int) -> None:
    """Every row the message made can be read again (PostgreSQL stores some values, such as
    a timestamp past year 9999, that no Python can load)."""
    for model, key in READ_BACK:
        list(model.objects.filter(**{key: email_id}).values())


READ_BACK = [
    (EmailMessage, "pk"),
    (Thread, "messages"),
    (Participant, "email_id"),
    (Attachment, "email_id"),
    (Meeting, "messages__email_id"),
    (MeetingMessage, "email_id"),
    (MeetingOverride, "meeting__messages__email_id"),
    (MessageRef, "email_id"),
    (ThreadLink, "thread__messages"),
    (ReviewItem, "email_id"),
]


def process_one(data: bytes, measure_peak, **fields) -> None:
    with rolled_back():
        (raw,) = store_all([RawSpec(data=data, channel=RawMessage.Channel.API, **fields)])
        with measure_peak(f"a {len(data):,}-byte mutant"):
            process_raw_messages([raw.pk])
        assert_settled([raw])


@given(data=m.mutants(m.BYTE_MUTATIONS))
def test_a_truncated_bit_flipped_or_nul_ridden_fixture_ends_processed_or_rejected(
    data, measure_peak
):
    process_one(data, measure_peak)


@given(data=m.mutants(m.STRUCTURE_MUTATIONS, max_steps=2))
def test_header_floods_deep_nesting_huge_encoded_words_and_boundary_games_end_settled(
    data, measure_peak
):
    process_one(data, measure_peak)


@given(data=m.mutants(m.TEXT_MUTATIONS + m.BYTE_MUTATIONS[2:3]))
def test_bad_charsets_and_text_that_decodes_to_nul_or_surrogates_end_settled(data, measure_peak):
    process_one(data, measure_peak)


@given(data=m.calendar_mutants())
def test_calendar_garbage_ends_processed_or_rejected_with_a_reason(data, measure_peak):
    process_one(data, measure_peak)


@given(
    batch=st.lists(
        m.mutants(m.BYTE_MUTATIONS + m.TEXT_MUTATIONS + m.STRUCTURE_MUTATIONS),
        min_size=2,
        max_size=5,
    ),
    channel=st.sampled_from([RawMessage.Channel.SMTP, RawMessage.Channel.ADDIN]),
    envelope_from=m.hostile_strings,
    envelope_to=st.lists(m.hostile_strings, max_size=3),
    source=m.hostile_strings,
    categories=st.lists(m.hostile_strings, max_size=3),
)
def test_a_batch_of_mutants_with_hostile_envelopes_and_choices_ends_settled_one_by_one(
    batch, channel, envelope_from, envelope_to, source, categories
):
    """One batch, as a channel's group commit stores it and a worker processes it: a bad
    message must not take the others down with it, nor fail itself."""
    with rolled_back():
        user = make_user()
        address = make_capture_address(user) if channel == RawMessage.Channel.SMTP else None
        specs = [
            RawSpec(
                data=data,
                channel=channel,
                user_id=user.pk,
                capture_address_id=address.pk if address else None,
                envelope_from=envelope_from,
                envelope_to=[*envelope_to, *([address.address] if address else [])],
                source=source,
                options={"categories": categories, "links": {}},
            )
            for data in batch
        ]
        raws = store_all(specs)
        process_raw_messages([r.pk for r in raws])
        assert_settled(raws)
