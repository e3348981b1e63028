"""Who may see which captured mail: the one answer every surface asks (docs/governance.md,
"Who may see what"). Nothing is shown to someone who may not see it.

`decide_access(viewer, facts)` is the single decision: from the viewer (role, own
involvement, team, an API token's scopes), the message's stored level and privacy flag, and
the capturing users' "who may see my synced mail" setting, it answers whether the viewer
sees the message's existence (date, addresses, direction, sizes), its subject, its body and
its attachments, and why not. `access_for` / `access_map` load the facts for one message or
a page of them; `visible_emails` / `visible_threads` are the matching list filters (a
message exists for the viewer exactly when `decide_access(...).exists`).

The rules, in order:
1. A token without `capture:read` sees nothing; an anonymous or inactive user nothing.
2. A private thread is its owner's alone: the thread owner (Thread.owner) and whoever
   captured the message (Capture.user) see what is stored; admins and compliance officers
   see that it exists (metadata), nothing more; everyone else nothing.
3. The viewer's own mail (they captured it, own its thread, or took part in it) and, for a
   compliance officer, all mail: everything stored.
4. An admin (or superuser) sees all mail, and a manager the mail their team's members
   captured, each up to what the capturers share: mail logged on purpose (BCC/forward,
   add-in, API, import) is shared in full; mail captured by mailbox sync only as far as the
   capturer's effective `synced_mail_visibility` (metadata / subject / everything).
5. Everyone else: nothing.
What is not stored (EmailMessage.stored metadata / subject) is never shown to anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from capture.models import Capture, EmailMessage, Participant, Thread
from capture.models.raw import Channel
from crm.auth import request_scopes
from crm.models import ApiToken, User
from governance.models import OrgSettings, SyncedMailVisibility, UserSettings
from governance.settings import effective_settings

READ_SCOPE = ApiToken.Scope.CAPTURE_READ.value


class Level(IntEnum):
    """How much of a message a viewer sees; each level includes the ones below it."""

    NONE = 0
    METADATA = 1  # it exists: date, addresses, direction, sizes, links
    SUBJECT = 2
    FULL = 3  # the body and the attachments too


STORED_LEVEL = {
    EmailMessage.Stored.METADATA: Level.METADATA,
    EmailMessage.Stored.SUBJECT: Level.SUBJECT,
    EmailMessage.Stored.FULL: Level.FULL,
}
SHARED_LEVEL = {
    SyncedMailVisibility.METADATA: Level.METADATA,
    SyncedMailVisibility.SUBJECT: Level.SUBJECT,
    SyncedMailVisibility.EVERYTHING: Level.FULL,
}


@dataclass(frozen=True)
class Access:
    """What one viewer sees of one message; `reason` says why something is hidden."""

    exists: bool
    subject: bool
    body: bool
    attachments: bool
    reason: str = ""

    @classmethod
    def at(cls, level: Level, reason: str = "") -> Access:
        return cls(
            exists=level >= Level.METADATA,
            subject=level >= Level.SUBJECT,
            body=level >= Level.FULL,
            attachments=level >= Level.FULL,
            reason="" if level >= Level.FULL else reason,
        )

    @property
    def level(self) -> Level:
        if self.body:
            return Level.FULL
        if self.subject:
            return Level.SUBJECT
        return Level.METADATA if self.exists else Level.NONE

    def hidden(self) -> str:
        """What a masked field shows instead of its value."""
        return f"(hidden: {self.reason or 'not visible to you'})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "body": self.body,
            "attachments": self.attachments,
            "reason": self.reason,
        }


NO_ACCESS = Access.at(Level.NONE, "not visible to you")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a user, and the scopes of the API token they came with (None for a
    session login, where scopes do not apply)."""

    user: Any
    scopes: frozenset[str] | None = None

    @classmethod
    def of(cls, who: Any) -> Viewer:
        """A Viewer from a Viewer, a user, or a request (its user and token scopes)."""
        if isinstance(who, Viewer):
            return who
        if hasattr(who, "META") and hasattr(who, "user"):
            scopes = request_scopes(who)
            return cls(who.user, frozenset(scopes) if scopes is not None else None)
        return cls(who)

    @property
    def active(self) -> bool:
        user = self.user
        return bool(user is not None and user.is_authenticated and user.is_active)

    @property
    def may_read(self) -> bool:
        return self.active and (self.scopes is None or READ_SCOPE in self.scopes)

    @property
    def role(self) -> str:
        if self.user.is_superuser:
            return User.Role.ADMIN
        return self.user.role


@dataclass(frozen=True)
class CaptureFact:
    user_id: int | None
    team_id: int | None
    channel: str


@dataclass(frozen=True)
class MessageFacts:
    """What the decision needs to know about a message (loaded in bulk by `access_map`)."""

    stored: str
    thread_private: bool = False
    thread_owner_id: int | None = None
    private: bool = False  # the message itself is private (capture/gate.py): its capturers only
    captures: tuple[CaptureFact, ...] = ()
    participant_user_ids: frozenset[int] = field(default_factory=frozenset)


def sees_everything(who: Any) -> bool:
    """Whether every message exists for this user (admins and compliance officers)."""
    if isinstance(who, Viewer):
        if not who.may_read:
            return False
        who = who.user
    user = who
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and (user.is_superuser or user.role in (User.Role.ADMIN, User.Role.COMPLIANCE))
    )


def decide_access(
    viewer: Viewer | Any,
    facts: MessageFacts,
    shared_level: Callable[[int], Level] | None = None,
) -> Access:
    """The one answer to "who may see this" (rules in the module docstring).

    `shared_level(user_id)` gives how far a capturing user shares their synced mail; by
    default it is read from their effective settings."""
    viewer = Viewer.of(viewer)
    if not viewer.active:
        return NO_ACCESS
    if not viewer.may_read:
        return Access.at(Level.NONE, f"token lacks the {READ_SCOPE} scope")
    stored = STORED_LEVEL.get(facts.stored, Level.METADATA)
    stored_reason = f"not stored ({EmailMessage.Stored(facts.stored).label.lower()})"
    uid = viewer.user.pk
    captured_by_viewer = any(c.user_id == uid for c in facts.captures)
    owner = facts.thread_owner_id == uid or captured_by_viewer
    role = viewer.role

    if facts.private:
        if captured_by_viewer:
            return Access.at(stored, stored_reason)
        if role in (User.Role.ADMIN, User.Role.COMPLIANCE):
            return Access.at(
                min(stored, Level.METADATA), "private message of the user who logged it"
            )
        return NO_ACCESS

    if facts.thread_private:
        if owner:
            return Access.at(stored, stored_reason)
        if role in (User.Role.ADMIN, User.Role.COMPLIANCE):
            return Access.at(min(stored, Level.METADATA), "private thread of its owner")
        return NO_ACCESS

    if owner or uid in facts.participant_user_ids or role == User.Role.COMPLIANCE:
        return Access.at(stored, stored_reason)

    if role == User.Role.ADMIN:
        shared_by = list(facts.captures)
    elif role == User.Role.MANAGER and viewer.user.team_id:
        shared_by = [c for c in facts.captures if c.team_id == viewer.user.team_id]
        if not shared_by:
            return NO_ACCESS
    else:
        return NO_ACCESS

    level_of = shared_level or _shared_level_from_settings
    shared = Level.FULL if not shared_by else Level.NONE
    for c in shared_by:
        if c.channel != Channel.IMAP or c.user_id is None:
            shared = Level.FULL  # logged on purpose (or by no one in particular)
            break
        shared = max(shared, level_of(c.user_id))
    level = min(stored, shared)
    if level >= stored:
        return Access.at(level, stored_reason)
    return Access.at(level, "synced mail its owner shares only as " + _shared_word(shared))


def _shared_word(level: Level) -> str:
    return {Level.METADATA: "metadata", Level.SUBJECT: "subject"}.get(level, "nothing")


def _shared_level_from_settings(user_id: int) -> Level:
    return shared_levels([user_id])[user_id]


def shared_levels(user_ids: Iterable[int]) -> dict[int, Level]:
    """How far each user shares their synced mail (their effective synced_mail_visibility)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    org = OrgSettings.load()
    rows = {s.user_id: s for s in UserSettings.objects.filter(user_id__in=ids)}
    out = {}
    for uid in ids:
        choices = rows.get(uid) or UserSettings(user_id=uid)
        value = effective_settings(User(pk=uid), org=org, choices=choices).synced_mail_visibility
        out[uid] = SHARED_LEVEL.get(value.value, Level.METADATA)
    return out


def load_facts(email_ids: Iterable[int], viewer: Viewer) -> dict[int, MessageFacts]:
    """The facts of these messages, in two queries whatever their number."""
    ids = list({int(i) for i in email_ids})
    if not ids:
        return {}
    uid = viewer.user.pk if viewer.active else None
    base = {
        row["pk"]: row
        for row in EmailMessage.objects.filter(pk__in=ids)
        .annotate(took_part=Exists(Participant.objects.filter(email=OuterRef("pk"), user_id=uid)))
        .values("pk", "stored", "private", "thread__private", "thread__owner_id", "took_part")
    }
    captures: dict[int, list[CaptureFact]] = {}
    for email_id, user_id, team_id, channel in Capture.objects.filter(email_id__in=ids).values_list(
        "email_id", "user_id", "user__team_id", "channel"
    ):
        captures.setdefault(email_id, []).append(CaptureFact(user_id, team_id, channel))
    return {
        pk: MessageFacts(
            stored=row["stored"],
            private=row["private"],
            thread_private=row["thread__private"],
            thread_owner_id=row["thread__owner_id"],
            captures=tuple(captures.get(pk, ())),
            participant_user_ids=frozenset({uid}) if row["took_part"] and uid else frozenset(),
        )
        for pk, row in base.items()
    }


def access_map(viewer: Viewer | Any, email_ids: Iterable[int]) -> dict[int, Access]:
    """Access to each of these messages (a page of a list): a few queries, not one a row.
    The capturers' sharing settings are read only if some row needs them (two queries)."""
    viewer = Viewer.of(viewer)
    if not viewer.may_read:
        return {int(pk): decide_access(viewer, MessageFacts(stored="full")) for pk in email_ids}
    facts = load_facts(email_ids, viewer)
    capturers = {c.user_id for f in facts.values() for c in f.captures if c.user_id}
    levels: dict[int, Level] = {}

    def level_of(uid: int) -> Level:
        if not levels:
            levels.update(shared_levels(capturers))
        return levels.get(uid, Level.METADATA)

    return {pk: decide_access(viewer, f, level_of) for pk, f in facts.items()}


def access_for(viewer: Viewer | Any, email: EmailMessage | int) -> Access:
    """Access to one message."""
    pk = email if isinstance(email, int) else email.pk
    return access_map(viewer, [pk]).get(pk, NO_ACCESS)


def thread_access(accesses: Iterable[Access]) -> Access:
    """What the viewer sees of a thread (its subject): the most they see of any message."""
    best = NO_ACCESS
    for a in accesses:
        if a.level > best.level:
            best = a
    return best


# --- list filters: a message exists for the viewer exactly when decide_access says so ------


def _owner_q(user: User) -> Q:
    return Q(thread__owner=user) | Q(
        Exists(Capture.objects.filter(email=OuterRef("pk"), user=user))
    )


def visible_emails(viewer: Viewer | Any) -> QuerySet[EmailMessage]:
    """Messages whose existence the viewer may see."""
    viewer = Viewer.of(viewer)
    qs = EmailMessage.objects.all()
    if not viewer.may_read:
        return qs.none()
    user = viewer.user
    if sees_everything(user):
        return qs
    mine = _owner_q(user) | Q(Exists(Participant.objects.filter(email=OuterRef("pk"), user=user)))
    if user.role == User.Role.MANAGER and user.team_id:
        mine |= Q(Exists(Capture.objects.filter(email=OuterRef("pk"), user__team_id=user.team_id)))
    captured = Q(Exists(Capture.objects.filter(email=OuterRef("pk"), user=user)))
    return (
        qs.filter(mine)
        .filter(Q(thread__private=False) | _owner_q(user))
        .filter(Q(private=False) | captured)
    )


def visible_threads(viewer: Viewer | Any) -> QuerySet[Thread]:
    """Threads with at least one message the viewer may see."""
    viewer = Viewer.of(viewer)
    if not viewer.may_read:
        return Thread.objects.none()
    if sees_everything(viewer.user):
        return Thread.objects.all()
    return Thread.objects.filter(pk__in=visible_emails(viewer).values("thread_id"))


def subject_readable_emails(viewer: Viewer | Any) -> QuerySet[EmailMessage]:
    """Messages whose subject the viewer surely may read, as one SQL filter: a conservative
    subset of `decide_access(...).subject` (synced mail shared by its owner's setting is left
    out). For places that print str(message) or str(thread) and cannot mask row by row, such
    as the admin's autocomplete."""
    viewer = Viewer.of(viewer)
    qs = visible_emails(viewer).exclude(stored=EmailMessage.Stored.METADATA)
    if not viewer.may_read:
        return qs
    user = viewer.user
    own = _owner_q(user) | Q(Exists(Participant.objects.filter(email=OuterRef("pk"), user=user)))
    public = Q(thread__private=False)
    on_purpose = Capture.objects.filter(email=OuterRef("pk")).exclude(channel=Channel.IMAP)
    role = Viewer(user).role
    if role == User.Role.COMPLIANCE:
        return qs.filter(public | _owner_q(user))
    if role == User.Role.ADMIN:
        return qs.filter(own | (public & Q(Exists(on_purpose))))
    if role == User.Role.MANAGER and user.team_id:
        team = on_purpose.filter(user__team_id=user.team_id)
        return qs.filter(own | (public & Q(Exists(team))))
    return qs.filter(own)
