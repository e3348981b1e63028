"""A user's capture settings: the organisation's defaults, the user's own choices, and the one
function that combines them (`effective_settings`).

Each user setting has an organisation default and an "apply to all users" switch (HubSpot):
with the switch on the default is the value and the user's choice is locked; with it off the
user's choice wins, and no choice (NULL) follows the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import transaction
from django.utils.translation import gettext

from crm.models import User
from governance.audit import record_event
from governance.models import ASSOCIATION_KINDS, OrgSettings, SyncedMailVisibility, UserSettings

T = TypeVar("T")

# user setting -> (UserSettings field, OrgSettings default field, OrgSettings enforce field)
USER_SETTINGS: dict[str, tuple[str, str, str]] = {
    "log_all": ("log_all", "log_all_by_default", "enforce_log_all"),
    "track": ("track", "track_by_default", "enforce_track"),
    "associations": ("associations", "default_associations", "enforce_associations"),
    "synced_mail_visibility": (
        "synced_mail_visibility",
        "synced_mail_visibility",
        "enforce_synced_mail_visibility",
    ),
    "private_by_default": (
        "private_by_default",
        "private_by_default",
        "enforce_private_by_default",
    ),
}
BOOLEAN_SETTINGS = ("log_all", "track", "private_by_default")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One effective value, whether the organisation locks it, and the user's own choice."""

    value: T
    locked: bool
    choice: T | None


@dataclass(frozen=True)
class EffectiveSettings:
    privacy_mode: bool
    log_internal_mail: bool
    log_all: Setting[bool]
    track: Setting[bool]
    associations: Setting[tuple[str, ...]]
    synced_mail_visibility: Setting[str]
    private_by_default: Setting[bool]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "privacy_mode": self.privacy_mode,
            "log_internal_mail": self.log_internal_mail,
        }
        for name in USER_SETTINGS:
            s: Setting[Any] = getattr(self, name)
            value = list(s.value) if isinstance(s.value, tuple) else s.value
            choice = list(s.choice) if isinstance(s.choice, tuple) else s.choice
            out[name] = {"value": value, "locked": s.locked, "choice": choice}
        return out


class SettingsRejected(Exception):
    """A settings change was refused; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def _choice(settings: UserSettings | None, field: str) -> Any:
    if settings is None:
        return None
    value = getattr(settings, field)
    if value in (None, ""):
        return None
    return tuple(value) if isinstance(value, list) else value


def effective_settings(
    user: User, *, org: OrgSettings | None = None, choices: UserSettings | None = None
) -> EffectiveSettings:
    """The settings that apply to `user`: the enforced org default, else their choice, else the default."""
    org = org or OrgSettings.load()
    if choices is None and user.pk is not None:
        choices = UserSettings.objects.filter(user=user).first()
    values: dict[str, Setting[Any]] = {}
    for name, (field, default_field, enforce_field) in USER_SETTINGS.items():
        default = getattr(org, default_field)
        if isinstance(default, list):
            default = tuple(default)
        locked = bool(getattr(org, enforce_field))
        choice = _choice(choices, field)
        value = default if locked or choice is None else choice
        values[name] = Setting(value=value, locked=locked, choice=choice)
    return EffectiveSettings(
        privacy_mode=org.privacy_mode, log_internal_mail=org.log_internal_mail, **values
    )


def effective_settings_of_users(
    user_ids: list[int] | set[int], *, org: OrgSettings | None = None
) -> dict[int, EffectiveSettings]:
    """`effective_settings` of many users, their own choices read in one query (the capture
    gate asks this once per batch)."""
    org = org or OrgSettings.load()
    ids = sorted({int(i) for i in user_ids if i})
    choices = {s.user_id: s for s in UserSettings.objects.filter(user_id__in=ids)} if ids else {}
    return {
        # no row: an empty one (every choice "follow the default"), not another query
        uid: effective_settings(
            User(pk=uid), org=org, choices=choices.get(uid) or UserSettings(user_id=uid)
        )
        for uid in ids
    }


def clean_associations(value: Any) -> list[str]:
    """A list of record kinds (ASSOCIATION_KINDS), deduplicated in their canonical order."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(gettext("Give a list of record kinds."))
    unknown = sorted(set(value) - set(ASSOCIATION_KINDS))
    if unknown:
        raise ValueError(
            f"Unknown record kinds: {', '.join(unknown)} (allowed: {', '.join(ASSOCIATION_KINDS)})."
        )
    return [k for k in ASSOCIATION_KINDS if k in value]


def _clean(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in BOOLEAN_SETTINGS:
        if not isinstance(value, bool):
            raise ValueError(gettext("Give true, false or null (follow the organisation default)."))
        return value
    if name == "associations":
        return clean_associations(value)
    if value not in SyncedMailVisibility.values:
        raise ValueError(f"Must be one of: {', '.join(SyncedMailVisibility.values)} or null.")
    return value


def update_user_settings(
    user: User,
    changes: Mapping[str, Any],
    *,
    actor: Any = None,
    channel: str = "",
    client: str = "",
) -> EffectiveSettings:
    """Set some of `user`'s own choices (None = follow the default); locked ones are refused."""
    org = OrgSettings.load()
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in USER_SETTINGS:
            errors[name] = [gettext("Unknown setting.")]
            continue
        if getattr(org, USER_SETTINGS[name][2]):
            errors[name] = [gettext("Locked: the organisation applies its default to all users.")]
            continue
        try:
            cleaned[name] = _clean(name, value)
        except ValueError as e:
            errors[name] = [str(e)]
    if errors:
        raise SettingsRejected(errors)
    with transaction.atomic():
        choices, _ = UserSettings.objects.select_for_update().get_or_create(user=user)
        changed = []
        for name, value in cleaned.items():
            field = USER_SETTINGS[name][0]
            stored = "" if value is None and field == "synced_mail_visibility" else value
            if getattr(choices, field) != stored:
                setattr(choices, field, stored)
                changed.append(field)
        if changed:
            choices.save(update_fields=[*changed, "updated"])
            record_event(
                "settings.changed",
                actor=actor or user,
                obj=choices,
                channel=channel,
                address=client,
                detail={"user": user.pk, "fields": sorted(changed)},
            )
    return effective_settings(user, org=org, choices=choices)
