from __future__ import annotations

import pytest
from django.db.models import Count

from crm.addresses import registrable_domain
from crm.demo import seed_crm
from crm.models import (
    Contact,
    ContactEmail,
    Item,
    Organization,
    OrganizationDomain,
    User,
    UserAddress,
)

pytestmark = pytest.mark.django_db


def snapshot() -> list:
    return sorted(
        ContactEmail.objects.values_list("contact__external_id", "address", "is_primary")
    ) + sorted(
        Item.objects.values_list("external_id", "kind", "status", "stage", "external_ref", "title")
    )


def test_seed_is_idempotent_a_second_run_adds_nothing():
    first = seed_crm(organizations=40)
    counts = (
        Organization.objects.count(),
        Contact.objects.count(),
        ContactEmail.objects.count(),
        Item.objects.count(),
    )
    second = seed_crm(organizations=40)
    assert first.created_organizations == 40 and first.created_contacts > 80
    assert not second.created_anything
    assert counts == (
        Organization.objects.count(),
        Contact.objects.count(),
        ContactEmail.objects.count(),
        Item.objects.count(),
    )


def test_seed_is_deterministic_and_a_larger_run_extends_a_smaller_one():
    seed_crm(organizations=30, seed=7)
    small = snapshot()
    seed_crm(organizations=45, seed=7)
    assert Organization.objects.count() == 45
    larger = snapshot()
    assert set(small) <= set(larger)


def test_demo_users_have_roles_teams_and_an_alias():
    demo = seed_crm(organizations=5)
    alice = demo.users["alice"]
    assert (alice.role, alice.team.name) == ("manager", "Sales EU")
    assert (demo.users["carol"].team.name, demo.users["dana"].role) == ("Sales US", "compliance")
    assert demo.users["bob"].role == "member"
    assert not User.objects.filter(role="admin").exists()
    for user in demo.users.values():
        assert user.email.endswith("@mailwarden-demo.com")
        assert UserAddress.objects.filter(user=user, kind="alias").count() == 1


def test_demo_data_has_real_ambiguity_free_mail_and_references():
    seed_crm(organizations=120)
    shared = ContactEmail.objects.values("address").annotate(n=Count("contact")).filter(n__gt=1)
    assert shared.count() >= 2
    assert ContactEmail.objects.filter(address__endswith="@gmail.com").exists()
    assert Item.objects.filter(kind="ticket", external_ref__startswith="TCK-").exists()
    assert Item.objects.filter(kind="deal", external_ref__startswith="PO-").exists()
    assert set(Item.objects.values_list("status", flat=True)) == {"open", "won", "lost", "closed"}
    assert set(Item.objects.values_list("kind", flat=True)) == {"deal", "lead", "project", "ticket"}
    assert not Item.objects.filter(status="open", closed_at__isnull=False).exists()
    assert not Item.objects.exclude(status="open").filter(closed_at__isnull=True).exists()
    for domain in OrganizationDomain.objects.values_list("domain", flat=True):
        assert registrable_domain(domain) == domain
    assert (
        Contact.objects.filter(emails__is_primary=True).distinct().count()
        == Contact.objects.count()
    )
