"""The intake service behind the REST API: a submission is stored once per idempotency key,
with its `capture.received` audit event, whichever door it came through."""

from __future__ import annotations

import pytest

from capture.intake import RawSpec, idempotency_key_for, store_raw_message_once
from capture.models import RawMessage
from governance.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db

MAIL = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <k1@x>\r\n\r\nbody\r\n"
)


def spec(user_id: int, key: str) -> RawSpec:
    return RawSpec(data=MAIL, channel=RawMessage.Channel.API, user_id=user_id, idempotency_key=key)


def test_a_second_submission_with_the_same_key_returns_the_first_row_and_audits_once():
    user = make_user()
    key = idempotency_key_for(user.pk, MAIL)
    first, dup1 = store_raw_message_once(spec(user.pk, key), actor=user, address="192.0.2.7")
    again, dup2 = store_raw_message_once(spec(user.pk, key), actor=user)
    assert (dup1, dup2) == (False, True)
    assert again.pk == first.pk
    events = AuditEvent.objects.filter(action="capture.received")
    assert [(e.object_id, e.actor_user_id, e.address) for e in events] == [
        (str(first.pk), user.pk, "192.0.2.7")
    ]
    assert events[0].detail["capture_channel"] == RawMessage.Channel.API


def test_the_key_follows_the_client_key_else_the_bytes_and_the_add_ins_choices():
    assert idempotency_key_for(1, MAIL, client_key="abc") == "api:1:key:abc"
    plain = idempotency_key_for(1, MAIL)
    assert plain == idempotency_key_for(1, MAIL) != idempotency_key_for(2, MAIL)
    choice_a = idempotency_key_for(1, MAIL, options={"categories": ["a"]})
    choice_b = idempotency_key_for(1, MAIL, options={"categories": ["b"]})
    assert len({plain, choice_a, choice_b}) == 3
