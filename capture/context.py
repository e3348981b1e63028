"""State shared by the steps while one batch of raw messages is processed.

The steps look things up here instead of querying per message: every address, domain,
Message-ID and never-log rule the batch needs is loaded in a few bulk queries, and what the
batch itself creates (emails, threads, contacts) is added as it goes, so a reply that
arrives in the same batch as its parent still finds it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models.functions import Lower

from capture.mime import CalendarEvent, ParsedEmail
from capture.models import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    MessageRef,
    Participant,
    RawMessage,
    ReviewItem,
    Thread,
    ThreadLink,
    UnmatchedReference,
)
from core.db.bulk import execute_binary
from crm.addresses import is_free_mail_domain, registrable_domain, split_address
from crm.models import Contact, ContactEmail, OrganizationDomain, User, UserAddress
from crm.services import MailContact
from governance.consent import CurrentBasis, current_bases
from governance.eligibility import RecipientVerdict, decide
from governance.models import AuditEvent, NeverLogRule, OrgSettings
from governance.settings import EffectiveSettings, effective_settings_of_users


@dataclass
class Work:
    """One raw message on its way through the steps."""

    raw: RawMessage
    parsed: ParsedEmail | None = None
    wrapper: ParsedEmail | None = None
    forwarded_flag: str = ""
    stored: str = EmailMessage.Stored.FULL
    gate_reasons: list[str] = field(default_factory=list)
    link_items: bool = True
    email: EmailMessage | None = None
    duplicate: bool = False
    participants: list[Participant] = field(default_factory=list)
    # the gate's answers (capture/gate.py): private mail, and each external address's verdict
    private: bool = False
    verdicts: dict[str, RecipientVerdict] = field(default_factory=dict)
    verdicts_refused: bool = False  # privacy mode: no external participant has a basis
    _addresses: list[str] | None = field(default=None, repr=False)

    def addresses(self) -> list[str]:
        """all_addresses(self.parsed), computed once (the gate and preload ask several times)."""
        if self._addresses is None:
            self._addresses = all_addresses(self.parsed) if self.parsed is not None else []
        return self._addresses

    status: str = ""
    reason_code: str = ""
    reason_detail: str = ""


@dataclass
class Policy:
    settings: OrgSettings
    internal_domains: frozenset[str]
    free_mail_extra: frozenset[str]
    role_extra: frozenset[str]
    never_log_org: frozenset[str]
    never_log_user: dict[int, frozenset[str]]
    private_tags: tuple[str, ...] = ()

    @classmethod
    def load(cls, addresses: set[str] | None = None) -> Policy:
        """The org settings and the never-log rules; with `addresses` (the batch's), only the
        rules that could match them (the address, its domain, its registrable domain): one
        lookup by the rules' value index instead of every rule of the organisation."""
        org = OrgSettings.load()
        per_user: dict[int, set[str]] = defaultdict(set)
        org_values: set[str] = set()
        rules = NeverLogRule.objects.all()
        if addresses is not None:
            # values are stored lower case (NeverLogRule.save) and normalised by the services
            rules = rules.filter(value__in=sorted(never_log_keys(addresses)))
        for user_id, value in rules.values_list("user_id", "value"):
            (per_user[user_id] if user_id else org_values).add(value.strip().lower())
        return cls(
            settings=org,
            internal_domains=frozenset(registrable_domain(d) for d in org.internal_domains or []),
            free_mail_extra=frozenset(d.lower() for d in org.extra_free_mail_domains or []),
            role_extra=frozenset(p.lower() for p in org.extra_role_local_parts or []),
            never_log_org=frozenset(org_values),
            never_log_user={k: frozenset(v) for k, v in per_user.items()},
            private_tags=tuple(
                t.strip().casefold()
                for t in org.private_subject_tags or []
                if isinstance(t, str) and t.strip()
            ),
        )

    def is_free_mail(self, domain: str) -> bool:
        return is_free_mail_domain(domain, self.free_mail_extra)


def never_log_keys(addresses: set[str]) -> set[str]:
    """The values a never-log rule must have to match one of these addresses."""
    keys = set(addresses)
    for address in addresses:
        try:
            domain = split_address(address)[1]
        except ValueError:
            continue
        keys.add(domain)
        keys.add(registrable_domain(domain))
    return keys


class BatchContext:
    def __init__(self, works: list[Work]) -> None:
        self.works = works
        self.policy = Policy.load({a for w in works for a in w.addresses()})
        self.now: datetime | None = None
        # address -> internal user id (login e-mails, connected addresses, aliases)
        self.internal_users: dict[str, int] = {}
        self._internal: dict[str, bool] = {}  # is_internal's answers (set after preload)
        # address -> [(contact_id, organization_id)]
        self.contacts_by_address: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
        # registrable domain -> organization id
        self.org_by_domain: dict[str, int] = {}
        # Message-ID -> EmailMessage (existing or created in this batch)
        self.emails_by_mid: dict[str, EmailMessage] = {}
        # referenced Message-ID -> thread ids of messages that point at it (late parents)
        self.children_threads: dict[str, set[int]] = defaultdict(set)
        self.threads: dict[int, Thread] = {}
        self.loaded_threads: dict[int, Thread] = {}  # preloaded, not yet used (see thread())
        self.thread_alias: dict[int, int] = {}
        self.thread_addresses: dict[int, set[str]] = defaultdict(set)
        # threads of this batch inserted at flush, and ids drawn for more (capture/threads.py)
        self.pending_threads: dict[int, Thread] = {}
        self.thread_ids: list[int] = []
        self.batch_threads: set[int] = set()  # every thread this batch started
        # normalised subject -> stored threads near the batch's dates (capture/threads.py)
        self.subject_candidates: dict[str, list[Thread]] | None = None
        # rows written at the end of the batch
        self.new_emails: list[EmailMessage] = []
        # calendar events of the batch's new messages, written by capture/meetings.py
        self.new_meetings: list[tuple[Work, CalendarEvent]] = []
        self.captured: list[tuple[Work, EmailMessage, bool]] = []
        self.new_participants: list[Participant] = []
        self.new_refs: list[MessageRef] = []
        self.new_captures: list[Capture] = []
        self.new_links: list[ThreadLink] = []
        # (work, thread id, matched contacts) of each new message: the link rules run once
        # for the batch (capture/linking.py), and threads whose items the add-in chose
        self.linked_works: list[tuple[Work, int, dict[int, str]]] = []
        self.addin_item_threads: set[int] = set()
        self.new_reviews: list[ReviewItem] = []
        self.new_unmatched_refs: list[UnmatchedReference] = []
        # (thread id, "contact" | "organization", id) of the participant links queued
        self.link_keys: set[tuple[int, str, int]] = set()
        self.new_attachments: list[Attachment] = []
        self.audit: list[AuditEvent] = []
        self.dirty_threads: set[int] = set()
        # stored threads a merge in this batch changed (capture/threads.py), and merges done
        self.overlap_stale: set[int] = set()
        self.threads_merged = 0
        # address -> participant rows of the stored subject candidates, loaded once (threads.py)
        self.stored_participants: dict[int, dict[str, int]] | None = None
        # attachments: blobs already stored (loaded once), new blobs by sha256 (capture/store.py)
        self.blobs: dict[str, Blob] | None = None
        self.new_blobs: dict[str, Blob] = {}
        # contacts created for new addresses, inserted at flush (capture/participants.py)
        self.new_contacts: list[MailContact] = []
        self.contact_ids: list[int] = []  # ids drawn for them (PostgreSQL)
        self.creation_locks_taken = False
        # categories chosen when an already logged mail is saved again (capture/pipeline.py)
        self.categories_added: list[tuple[EmailMessage, list[str], RawMessage]] = []
        self.category_names: set[str] | None = None  # names that are categories (pipeline.py)
        self.mailbox_visibility: dict[int, str] = {}  # capture/gate.py
        # the current consent of every contact the batch's addresses match (one query), the
        # capturing users' effective settings (one query), and the gate's verdicts per address
        self.bases: dict[int, CurrentBasis] = {}
        self.user_settings: dict[int, EffectiveSettings] = {}
        self._verdicts: dict[str, RecipientVerdict] = {}

    # --- bulk loading ---------------------------------------------------------------------
    def preload(self) -> None:
        """Load, in a handful of queries, everything the steps will look up."""
        addresses: set[str] = set()
        mids: set[str] = set()
        for w in self.works:
            p = w.parsed
            if p is None:
                continue
            mids.add(p.message_id)
            mids.add(p.in_reply_to)
            mids.update(p.references)
            addresses.update(w.addresses())
        mids.discard("")
        pg = connection.vendor == "postgresql"
        if addresses:
            domains = {registrable_domain(split_address(a)[1]) for a in addresses}
            if pg:
                # One array parameter bound in binary instead of an IN list of hundreds of
                # quoted literals: ~1.2 instead of ~5 ms of client CPU a lookup of 400
                # addresses (Django builds, quotes and compiles each list).
                users, contacts, orgs = _preload_addresses_pg(sorted(addresses), sorted(domains))
            else:
                users = list(
                    UserAddress.objects.verified()
                    .filter(address__in=addresses)
                    .values_list("address", "user_id")
                ) + list(
                    User.objects.annotate(e=Lower("email"))
                    .filter(e__in=addresses, is_active=True)
                    .values_list("e", "pk")
                )
                contacts = ContactEmail.objects.filter(address__in=addresses).values_list(
                    "address", "contact_id", "contact__organization_id"
                )
                orgs = OrganizationDomain.objects.filter(domain__in=domains).values_list(
                    "domain", "organization_id"
                )
            for addr, uid in users:  # connected addresses and aliases first, then logins
                self.internal_users.setdefault(addr, uid)
            for addr, cid, oid in contacts:
                self.contacts_by_address[addr].append((cid, oid))
            for dom, oid in orgs:
                self.org_by_domain[dom] = oid
            contact_ids = {cid for found in self.contacts_by_address.values() for cid, _ in found}
            if contact_ids:
                self.bases = current_bases(contact_ids)
        user_ids = {w.raw.user_id for w in self.works if w.raw.user_id}
        if user_ids:
            self.user_settings = effective_settings_of_users(user_ids, org=self.policy.settings)
        if mids:
            if pg:
                emails, refs = _preload_message_ids_pg(sorted(mids))
            else:
                emails = EmailMessage.objects.filter(message_id__in=mids).only(
                    "id", "message_id", "thread_id", "date"
                )
                refs = MessageRef.objects.filter(ref__in=mids).values_list(
                    "ref", "email__thread_id"
                )
            for email in emails:
                self.emails_by_mid[email.message_id] = email
            for ref, tid in refs:
                self.children_threads[ref].add(tid)
            # The threads a reply may join or a late parent absorb, in one query; self.thread
            # takes them from here (they join self.threads only when a message uses them).
            tids = {e.thread_id for e in self.emails_by_mid.values() if e.thread_id}
            tids.update(t for ts in self.children_threads.values() for t in ts)
            if tids:
                self.loaded_threads = {t.pk: t for t in Thread.objects.filter(pk__in=tids)}

    def thread(self, thread_id: int) -> Thread:
        thread_id = self.resolve_thread_id(thread_id)
        if thread_id not in self.threads:
            loaded = self.loaded_threads.pop(thread_id, None)
            self.threads[thread_id] = loaded or Thread.objects.get(pk=thread_id)
        return self.threads[thread_id]

    def resolve_thread_id(self, thread_id: int) -> int:
        while thread_id in self.thread_alias:
            thread_id = self.thread_alias[thread_id]
        return thread_id

    def verdict(self, address: str) -> RecipientVerdict:
        """governance.eligibility's answer for an external address, from what the batch
        preloaded (its contacts and their consent); never-log is the gate's own check before."""
        found = self._verdicts.get(address)
        if found is None:
            org = self.policy.settings
            found = self._verdicts[address] = decide(
                address,
                never_log=False,
                internal=False,
                contact_ids=[cid for cid, _ in self.contacts_by_address.get(address, ())],
                bases=self.bases,
                privacy_mode=org.privacy_mode,
                log_internal_mail=org.log_internal_mail,
                track=False,  # the gate decides logging; tracking is answered at send time
            )
        return found

    def private_by_default(self, user_id: int | None) -> bool:
        settings = self.user_settings.get(user_id or 0)
        if settings is None:
            org = self.policy.settings
            return bool(org.private_by_default)
        return bool(settings.private_by_default.value)

    def is_internal(self, address: str) -> bool:
        # asked ~3 times per address and message (direction, participants, threading)
        found = self._internal.get(address)
        if found is None:
            found = self._internal[address] = self._is_internal(address)
        return found

    def _is_internal(self, address: str) -> bool:
        if address in self.internal_users:
            return True
        try:
            domain = split_address(address)[1]
        except ValueError:
            return False
        return registrable_domain(domain) in self.policy.internal_domains


def _preload_addresses_pg(addresses: list[str], domains: list[str]):
    """(internal user rows, contact rows, organization rows) for the batch's addresses."""
    ua, u = UserAddress._meta.db_table, User._meta.db_table
    ce, c = ContactEmail._meta.db_table, Contact._meta.db_table
    od = OrganizationDomain._meta.db_table
    users = execute_binary(
        f"SELECT address, user_id, 0 AS o FROM {ua} WHERE address = ANY(%b::text[])"  # noqa: S608
        " AND verified_at IS NOT NULL"  # an unverified address is not the user's own
        f" UNION ALL SELECT lower(email), id, 1 FROM {u}"
        f" WHERE is_active AND lower(email) = ANY(%b::text[]) ORDER BY o",
        [addresses, addresses],
        fetch=True,
    )
    contacts = execute_binary(
        f"SELECT e.address, e.contact_id, c.organization_id FROM {ce} e"  # noqa: S608
        f" JOIN {c} c ON c.id = e.contact_id WHERE e.address = ANY(%b::text[])",
        [addresses],
        fetch=True,
    )
    orgs = execute_binary(
        f"SELECT domain, organization_id FROM {od} WHERE domain = ANY(%b::text[])",  # noqa: S608
        [domains],
        fetch=True,
    )
    return [r[:2] for r in users], contacts, orgs


# Driven from the batch's Message-IDs through the indexes (OFFSET 0 keeps each lateral lookup
# a parameterised index scan): `ref` is not unique, and as a plain join the planner guessed a
# large share of the table and hash-joined two sequential scans, always without statistics
# and often with them, a cost that grew with all stored mail (bench/ingest.py;
# tests/capture/test_lookup_plans.py). The Message-ID lookup of _preload_message_ids_pg needs
# no such care: its unique index tells the planner one row per ID.
CHILD_REFS_PG = (
    "SELECT m.ref, e.thread_id FROM unnest(%b::text[]) AS m(ref)"
    " CROSS JOIN LATERAL (SELECT r.email_id FROM capture_messageref r WHERE r.ref = m.ref"
    " OFFSET 0) AS r"
    " CROSS JOIN LATERAL (SELECT e.thread_id FROM capture_emailmessage e WHERE e.id = r.email_id"
    " OFFSET 0) AS e"
)


def _preload_message_ids_pg(mids: list[str]):
    """(stored emails by these Message-IDs, (ref, thread id) of stored messages pointing at
    them); the emails as EmailMessage.objects.only("id", "message_id", "thread_id", "date")."""
    em, mr = EmailMessage._meta.db_table, MessageRef._meta.db_table
    fields = ["id", "message_id", "thread_id", "date"]
    rows = execute_binary(
        f"SELECT {', '.join(fields)} FROM {em} WHERE message_id = ANY(%b::text[])",  # noqa: S608
        [mids],
        fetch=True,
    )
    emails = [EmailMessage.from_db("default", fields, row) for row in rows]
    assert (em, mr) == ("capture_emailmessage", "capture_messageref")  # CHILD_REFS_PG names both
    refs = execute_binary(CHILD_REFS_PG, [mids], fetch=True)
    return emails, refs


def all_addresses(parsed: ParsedEmail) -> list[str]:
    out = []
    groups = (parsed.from_, parsed.reply_to, parsed.to, parsed.cc, parsed.bcc)
    for group in groups:
        out.extend(a.address for a in group if a.valid and a.address)
    if parsed.sender is not None and parsed.sender.valid and parsed.sender.address:
        out.append(parsed.sender.address)
    for event in parsed.calendar:
        out.extend(a.address for a in event.attendees if a.valid and a.address)
        if event.organizer is not None and event.organizer.valid and event.organizer.address:
            out.append(event.organizer.address)
    return out
