"""The retention admin: saving a policy shows first what it makes due and asks to confirm;
every page opens; a hold shows what it covers with a link to its messages."""

from __future__ import annotations

import pytest

from capture.models import LegalHold, RetentionPolicy
from capture.purge import purge_expired
from capture.retention import recompute
from tests.capture.retention.helpers import capture, mail, policy

pytestmark = pytest.mark.django_db

FORM = {
    "name": "one month",
    "description": "",
    "enabled": "on",
    "order": "0",
    "categories": "",
    "trigger": "received",
    "duration_days": "30",
    "action": "delete",
    "reviewer": "",
}


def test_saving_a_policy_shows_what_it_makes_due_then_saves_on_confirmation(
    admin_client_logged_in, django_capture_on_commit_callbacks
):
    email = capture(mail("adm@x.example"))
    r = admin_client_logged_in.post("/admin/capture/retentionpolicy/add/", FORM)
    assert r.status_code == 200
    assert b"would make due: now: 1 (today 0, 1 newly)" in r.content
    assert not RetentionPolicy.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client_logged_in.post(
            "/admin/capture/retentionpolicy/add/", {**FORM, "confirm": "on"}
        )
    assert r.status_code == 302, r.content[:2000]
    p = RetentionPolicy.objects.get()
    email.refresh_from_db()
    assert email.expiry_policy_id == p.pk
    r = admin_client_logged_in.post(
        f"/admin/capture/retentionpolicy/{p.pk}/change/",
        {**FORM, "directions": ["sideways"], "confirm": "on"},
    )
    assert r.status_code == 200 and b"sideways" in r.content  # a bad choice, shown not saved


def test_every_retention_page_opens(admin_client_logged_in, admin_user):
    email = capture(mail("pages@x.example"))
    policy("review", duration_days=1, action="review", reviewer=admin_user)
    recompute()
    purge_expired()
    hold = LegalHold.objects.create(name="h", reason="r")
    hold.threads.set([email.thread])
    for model in (
        "retentionpolicy",
        "legalhold",
        "expiringmessage",
        "purgerun",
        "binnedmessage",
        "dispositionreview",
        "expiryjob",
    ):
        r = admin_client_logged_in.get(f"/admin/capture/{model}/")
        assert r.status_code == 200, model
    r = admin_client_logged_in.get("/admin/capture/legalhold/")
    assert b"1 messages in 1 threads" in r.content
    other = capture(mail("other-page@x.example", subject="Unrelated"))
    r = admin_client_logged_in.get(f"/admin/capture/expiringmessage/?hold={hold.pk}")
    assert f"/expiringmessage/{email.pk}/change/".encode() in r.content
    assert f"/expiringmessage/{other.pk}/change/".encode() not in r.content
    r = admin_client_logged_in.get("/admin/capture/purgerun/")
    assert b"The next run would act on" in r.content
    review = email.pk
    from capture.models import DispositionReview

    rv = DispositionReview.objects.get(email_ref=review)
    r = admin_client_logged_in.get(f"/admin/capture/dispositionreview/{rv.pk}/change/")
    assert r.status_code == 200 and b"justification_text" in r.content
    r = admin_client_logged_in.post(
        f"/admin/capture/dispositionreview/{rv.pk}/change/",
        {
            "decision": "extend",
            "justification_text": "still needed",
            "extend_until": "2099-01-01 00:00:00",
            "relabel_to": "",
        },
    )
    assert r.status_code == 302
    rv.refresh_from_db()
    assert rv.status == "extended" and rv.justification == "still needed"


def test_the_demo_seeds_one_policy_and_one_hold_once():
    from capture.demo import seed_demo_retention
    from tests.factories import make_organization

    make_organization()
    assert seed_demo_retention() == {"retention_policies": 1, "legal_holds": 1}
    assert seed_demo_retention() == {"retention_policies": 0, "legal_holds": 0}
    assert LegalHold.objects.get().organizations.count() == 1
