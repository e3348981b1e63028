from __future__ import annotations

import itertools

import pytest

from crm.models import ApiToken
from governance.models import OrgSettings, SyncedMailVisibility, UserSettings
from governance.settings import SettingsRejected, effective_settings, update_user_settings
from tests.crm.api_helpers import token_client
from tests.factories import make_user

pytestmark = pytest.mark.django_db

# (enforce, user choice, org default) -> (value, locked), for every combination.
BOOL_TABLE = [
    (enforce, choice, default)
    for enforce, choice, default in itertools.product(
        (False, True), (None, True, False), (True, False)
    )
]


def expected(enforce, choice, default):
    return (default if enforce or choice is None else choice), enforce


@pytest.mark.parametrize(("enforce", "choice", "default"), BOOL_TABLE)
@pytest.mark.parametrize(
    ("name", "default_field", "enforce_field"),
    [
        ("log_all", "log_all_by_default", "enforce_log_all"),
        ("track", "track_by_default", "enforce_track"),
        ("private_by_default", "private_by_default", "enforce_private_by_default"),
    ],
)
def test_a_yes_no_setting_is_the_enforced_default_else_the_users_choice_else_the_default(
    name, default_field, enforce_field, enforce, choice, default
):
    user = make_user()
    org = OrgSettings.load()
    setattr(org, default_field, default)
    setattr(org, enforce_field, enforce)
    org.save()
    UserSettings.objects.create(user=user, **{name: choice})
    setting = getattr(effective_settings(user), name)
    assert (setting.value, setting.locked) == expected(enforce, choice, default)
    assert setting.choice == choice


LISTS = (None, ("contact",), ("deal", "ticket"))
VISIBILITIES = (None, *SyncedMailVisibility.values)


@pytest.mark.parametrize(
    ("enforce", "choice", "default"),
    list(itertools.product((False, True), LISTS, (("contact", "organization"), ()))),
)
def test_the_associations_are_the_enforced_default_else_the_users_choice_else_the_default(
    enforce, choice, default
):
    user = make_user()
    org = OrgSettings.load()
    org.default_associations = list(default)
    org.enforce_associations = enforce
    org.save()
    UserSettings.objects.create(user=user, associations=list(choice) if choice else None)
    setting = effective_settings(user).associations
    assert (setting.value, setting.locked) == expected(enforce, choice, default)


@pytest.mark.parametrize(
    ("enforce", "choice", "default"),
    list(itertools.product((False, True), VISIBILITIES, ("metadata", "everything"))),
)
def test_synced_mail_visibility_is_the_enforced_default_else_the_users_choice_else_the_default(
    enforce, choice, default
):
    user = make_user()
    org = OrgSettings.load()
    org.synced_mail_visibility = default
    org.enforce_synced_mail_visibility = enforce
    org.save()
    UserSettings.objects.create(user=user, synced_mail_visibility=choice or "")
    setting = effective_settings(user).synced_mail_visibility
    assert (setting.value, setting.locked) == expected(enforce, choice, default)


def test_a_user_without_a_settings_row_follows_every_default_and_gets_no_row():
    user = make_user()
    org = OrgSettings.load()
    org.log_all_by_default = True
    org.privacy_mode = True
    org.save()
    settings = effective_settings(user)
    assert settings.log_all.value is True
    assert settings.track.value is False
    assert settings.privacy_mode is True
    assert settings.associations.value == tuple(org.default_associations)
    assert not UserSettings.objects.filter(user=user).exists()


def test_changing_a_locked_setting_is_refused_and_names_the_field():
    user = make_user()
    org = OrgSettings.load()
    org.enforce_track = True
    org.save()
    with pytest.raises(SettingsRejected) as e:
        update_user_settings(user, {"track": True, "log_all": True})
    assert list(e.value.errors) == ["track"]
    assert "Locked" in e.value.errors["track"][0]
    assert not UserSettings.objects.filter(user=user).exists()  # nothing half-applied


def test_unknown_kinds_and_values_are_refused():
    user = make_user()
    with pytest.raises(SettingsRejected) as e:
        update_user_settings(
            user,
            {"associations": ["deal", "invoice"], "log_all": "yes", "synced_mail_visibility": "x"},
        )
    assert set(e.value.errors) == {"associations", "log_all", "synced_mail_visibility"}


def test_the_org_settings_api_sets_defaults_and_refuses_unknown_record_kinds():
    client = token_client([ApiToken.Scope.GOVERNANCE_ADMIN])
    bad = client.patch(
        "/api/v1/org-settings/", {"default_associations": ["invoice"]}, format="json"
    )
    assert bad.status_code == 400
    good = client.patch(
        "/api/v1/org-settings/",
        {"default_associations": ["ticket", "deal"], "enforce_associations": True},
        format="json",
    )
    assert good.status_code == 200, good.content
    assert effective_settings(make_user()).associations.value == ("deal", "ticket")
