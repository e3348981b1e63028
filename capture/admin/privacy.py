"""Admin actions on threads: mark private, share again (capture/privacy.py decides who may).

Added to the Thread admin page registered in capture/admin/messages.py."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture.models import Thread
from capture.privacy import set_thread_private


def _apply(modeladmin, request, queryset, private: bool) -> None:
    done, refused = 0, 0
    for thread in queryset:
        try:
            set_thread_private(thread, private, user=request.user, channel="admin")
            done += 1
        except PermissionDenied:
            refused += 1
    verb = "marked private" if private else "shared again"
    modeladmin.message_user(
        request,
        gettext("%(done)s thread(s) %(verb)s.") % {"done": done, "verb": verb},
        messages.SUCCESS,
    )
    if refused:
        who = "owner or an admin" if private else "owner"
        modeladmin.message_user(
            request,
            gettext("%(refused)s thread(s) skipped: only their %(who)s may do that.")
            % {"refused": refused, "who": who},
            messages.WARNING,
        )


@admin.action(description=_("Mark private (visible to the owner alone)"))
def make_private(modeladmin, request, queryset) -> None:
    _apply(modeladmin, request, queryset, True)


@admin.action(description=_("Share again (owner only)"))
def share(modeladmin, request, queryset) -> None:
    _apply(modeladmin, request, queryset, False)


def install() -> None:
    thread_admin = admin.site._registry.get(Thread)
    if thread_admin is None:
        return
    have = tuple(thread_admin.actions or ())
    thread_admin.actions = have + tuple(a for a in (make_private, share) if a not in have)


install()
