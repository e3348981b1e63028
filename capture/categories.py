"""Categories of captured mail: admin-defined names (capture.models.Category), chosen in the
add-in and edited on a stored message afterwards.

Storage: a message keeps its categories as a JSON list of names (EmailMessage.categories),
checked against Category here, at every door (the add-in's capture, the API, the admin). A
deactivated category cannot be chosen anew but stays on the mail that has it. A category's
name is fixed once created (renaming would silently change what old mail says); deactivate
it and create another instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from capture.errors import InputRejected
from capture.models import Category, EmailMessage
from governance.audit import record_event

MAX_CATEGORIES = 50
NAME_MAX = 100


class CategoryRejected(InputRejected):
    """Names that are not active categories, or a category that cannot be created as asked."""


def unusable_categories(names: Iterable[str]) -> list[str]:
    """The names among `names` that are not active categories (in the order given)."""
    wanted = list(dict.fromkeys(str(n) for n in names))
    if not wanted:
        return []
    active = set(
        Category.objects.filter(name__in=wanted, active=True).values_list("name", flat=True)
    )
    return [n for n in wanted if n not in active]


def check_new_categories(names: Iterable[str]) -> list[str]:
    """The names, deduplicated in order; CategoryRejected if one is not an active category."""
    wanted = list(dict.fromkeys(str(n) for n in names))
    if len(wanted) > MAX_CATEGORIES:
        raise CategoryRejected("too_many_categories", f"at most {MAX_CATEGORIES}")
    bad = unusable_categories(wanted)
    if bad:
        raise CategoryRejected("unknown_category", ", ".join(bad))
    return wanted


def set_email_categories(
    email: EmailMessage,
    names: Iterable[str],
    *,
    actor: Any,
    channel: str,
    address: str = "",
) -> list[str]:
    """Replace a message's categories; names it did not have must be active categories."""
    wanted = list(dict.fromkeys(str(n) for n in names))
    if len(wanted) > MAX_CATEGORIES:
        raise CategoryRejected("too_many_categories", f"at most {MAX_CATEGORIES}")
    with transaction.atomic():
        locked = EmailMessage.objects.select_for_update().only("id", "categories").get(pk=email.pk)
        have = list(locked.categories or [])
        added = [n for n in wanted if n not in have]
        removed = [n for n in have if n not in wanted]
        bad = unusable_categories(added)
        if bad:
            raise CategoryRejected("unknown_category", ", ".join(bad))
        if not added and not removed and wanted == have:
            email.categories = have
            return have
        EmailMessage.objects.filter(pk=email.pk).update(categories=wanted)
        ids = dict(Category.objects.filter(name__in=added + removed).values_list("name", "pk"))
        record_event(
            "email.categories_changed",
            actor=actor,
            obj=locked,
            channel=channel,
            address=address,
            detail={
                "added": sorted(ids[n] for n in added if n in ids),
                "removed": sorted(ids[n] for n in removed if n in ids),
                "removed_unknown": sum(1 for n in removed if n not in ids),
                "count": len(wanted),
            },
        )
    email.categories = wanted
    return wanted


def create_category(
    name: str, *, active: bool = True, order: int = 0, actor: Any, channel: str, address: str = ""
) -> Category:
    """Create a category (its name unique, trimmed, 1-100 characters)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise CategoryRejected("invalid_name", f"1 to {NAME_MAX} characters")
    with transaction.atomic():
        if Category.objects.filter(name=name).exists():
            raise CategoryRejected("duplicate_name", "a category of that name exists")
        category = Category.objects.create(name=name, active=active, order=order)
        record_event(
            "capture.category.created",
            actor=actor,
            obj=category,
            channel=channel,
            address=address,
            detail={"active": active, "order": order},
        )
    return category


def update_category(
    category: Category,
    *,
    active: bool | None = None,
    order: int | None = None,
    actor: Any,
    channel: str,
    address: str = "",
) -> Category:
    """Change a category's active flag or order (its name is fixed once created)."""
    fields = []
    if active is not None and active != category.active:
        category.active = active
        fields.append("active")
    if order is not None and order != category.order:
        category.order = order
        fields.append("order")
    if not fields:
        return category
    with transaction.atomic():
        category.save(update_fields=[*fields, "updated"])
        record_event(
            "capture.category.deactivated"
            if fields == ["active"] and not category.active
            else "capture.category.updated",
            actor=actor,
            obj=category,
            channel=channel,
            address=address,
            detail={"fields": fields, "active": category.active, "order": category.order},
        )
    return category


def set_categories_active(
    categories: Iterable[Category], active: bool, *, actor: Any, channel: str, address: str = ""
) -> int:
    """Activate or deactivate several categories; returns how many changed."""
    changed = 0
    for category in categories:
        if category.active != active:
            update_category(category, active=active, actor=actor, channel=channel, address=address)
            changed += 1
    return changed
