"""A thread's owner marks it private or shares it again (docs/governance.md, "Private mail").

A private thread is visible to its owner alone (capture/visibility.py); new mail into it is
private (capture/gate.py: metadata only, linked to nothing, or not stored, as the org sets).
Sharing it again makes it and the owner's own private messages in it visible as before; what
was stored metadata-only stays metadata-only (the bodies were never kept). Every change is
audited; the doors (API, admin action) call these functions.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from capture.models import EmailMessage, Thread
from crm.models import User
from governance.audit import record_event


def can_make_private(user: User, thread: Thread) -> bool:
    """The thread's owner and admins may mark it private."""
    return bool(user.is_admin_role or (thread.owner_id and thread.owner_id == user.pk))


def can_share(user: User, thread: Thread) -> bool:
    """Only the owner shares a private thread again (an admin cannot expose someone's mail)."""
    return bool(thread.owner_id and thread.owner_id == user.pk)


def set_thread_private(
    thread: Thread,
    private: bool,
    *,
    user: User,
    actor: Any = None,
    channel: str,
    address: str = "",
) -> Thread:
    """Mark `thread` private (True) or share it again (False); audited, idempotent."""
    allowed = can_make_private(user, thread) if private else can_share(user, thread)
    if not allowed:
        raise PermissionDenied(
            "Only the thread's owner or an admin may mark it private."
            if private
            else "Only the thread's owner may share it again."
        )
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        shared_messages = 0
        changed = locked.private != private
        if changed:
            locked.private = private
            locked.save(update_fields=["private", "updated"])
        if not private:
            # The owner's own private captures in it are shared with the thread; someone
            # else's private mail stays theirs.
            shared_messages = EmailMessage.objects.filter(
                thread=locked, private=True, first_raw__user_id=locked.owner_id
            ).update(private=False)
        if changed or shared_messages:
            record_event(
                "thread.made_private" if private else "thread.shared",
                actor=actor or user,
                obj=locked,
                channel=channel,
                address=address,
                detail={"thread": locked.pk, "messages_shared": shared_messages},
            )
    thread.private = private
    return locked
