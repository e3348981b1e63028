"""Who may see which captured mail. Nothing is shown to someone who may not see it.

Admins and compliance officers see everything; a team manager sees mail captured by the
team's members; a member sees mail they captured, threads they own, and mail they took part
in. Private threads are visible only to their owner and admins/compliance. The governance
work (visibility levels per user, privacy mode) refines this function, not its callers.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from capture.models import EmailMessage, Thread
from crm.models import User


def sees_everything(user: User) -> bool:
    return bool(user.is_superuser or user.role in (User.Role.ADMIN, User.Role.COMPLIANCE))


def visible_emails(user: User) -> QuerySet[EmailMessage]:
    qs = EmailMessage.objects.all()
    if sees_everything(user):
        return qs
    mine = Q(captures__user=user) | Q(thread__owner=user) | Q(participants__user=user)
    if user.role == User.Role.MANAGER and user.team_id:
        mine |= Q(captures__user__team_id=user.team_id)
    ids = EmailMessage.objects.filter(mine).values("pk")
    return qs.filter(pk__in=ids).exclude(Q(thread__private=True) & ~Q(thread__owner=user))


def visible_threads(user: User) -> QuerySet[Thread]:
    if sees_everything(user):
        return Thread.objects.all()
    return Thread.objects.filter(pk__in=visible_emails(user).values("thread_id"))
