"""Demo mail: realistic generated threads fed through the real pipeline.

`generate_messages` writes RFC 5322 mail (CRLF, multipart/alternative text + HTML, some
attachments and Cc, a meeting invite) between internal users and customer contacts,
deterministically for a seed. `feed_demo_mail` stores it as raw messages on the `demo`
channel and processes them with the pipeline, so a newcomer's admin shows captured mail on
the first `make run`; the benchmark (bench/ingest.py) uses the same generator.
"""

from __future__ import annotations

import html
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

Person = tuple[str, str]  # (display name, address)

INTERNAL_DOMAIN = "mailwarden-demo.com"
DEMO_CHANNEL = "demo"
INGEST_BATCH = 100
# The invite comes at a fixed place (not a share of n), so the first k messages of a seed are
# the same whatever n is: a larger demo run extends a smaller one.
MEETING_THREAD = 3

_PRODUCTS = (
    "warehouse scanners",
    "fleet telematics",
    "cloud backup",
    "label printers",
    "support contract",
    "CRM licences",
    "network switches",
    "training days",
    "spare parts kit",
    "maintenance plan",
)
_ISSUES = (
    "login fails after update",
    "invoice shows wrong VAT",
    "delivery arrived damaged",
    "export to CSV is empty",
    "printer firmware error 42",
    "cannot reset password",
    "sync stopped overnight",
)
_TOPICS = ("the Q3 rollout", "pricing for next year", "the pilot results", "onboarding", "the SLA")
_SENTENCES = (
    "Thanks for getting back to us so quickly.",
    "As discussed on the phone, I have put the details together below.",
    "Could you confirm the delivery address and the preferred date?",
    "Our finance team needs the purchase order number before we can release the shipment.",
    "The revised figures include the volume discount we agreed on.",
    "Please let me know if anything is missing or unclear.",
    "We would like to start with a small pilot before rolling out to all sites.",
    "I have copied my colleague who looks after the technical side.",
    "The lead time is currently three weeks from order confirmation.",
    "Attached you will find the document we talked about.",
    "Can we schedule a short call this week to go through the open points?",
    "Our legal department has reviewed the contract and has two small comments.",
    "The team on site reported that the issue happens every morning around nine.",
    "We have escalated this internally and will update you by tomorrow.",
    "Prices are valid for thirty days and exclude shipping.",
    "I am out of the office on Friday, but my colleague can help in the meantime.",
    "Payment terms are thirty days net from the invoice date.",
    "The installation can be done in one afternoon without downtime.",
    "We appreciate your patience while we look into this.",
    "Could you send us the serial numbers of the affected devices?",
)
_GREETINGS = ("Hi {first},", "Hello {first},", "Dear {first},", "Good morning {first},")
_CLOSINGS = ("Best regards,", "Kind regards,", "Thanks,", "Cheers,", "Many thanks,")


@dataclass(frozen=True)
class DemoMessage:
    """One generated message and what a channel would know about it."""

    data: bytes
    date: datetime
    internal_address: (
        str  # the capturing user's address: the sender, or the recipient of inbound mail
    )
    inbound: bool


def generate_messages(
    *,
    n: int,
    seed: int,
    internal: Sequence[Person],
    customers: Sequence[Person],
    start: datetime,
    attachment_ratio: float = 1 / 3,
    size_range: tuple[int, int] = (5_000, 50_000),
    thread_lengths: tuple[int, int] = (1, 10),
) -> list[bytes]:
    """`n` RFC 5322 messages (CRLF) in threads between internal users and customers."""
    return [
        m.data
        for m in generate_demo_messages(
            n=n,
            seed=seed,
            internal=internal,
            customers=customers,
            start=start,
            attachment_ratio=attachment_ratio,
            size_range=size_range,
            thread_lengths=thread_lengths,
        )
    ]


def generate_demo_messages(
    *,
    n: int,
    seed: int,
    internal: Sequence[Person],
    customers: Sequence[Person],
    start: datetime,
    attachment_ratio: float = 1 / 3,
    size_range: tuple[int, int] = (5_000, 50_000),
    thread_lengths: tuple[int, int] = (1, 10),
) -> list[DemoMessage]:
    """Like generate_messages, with each message's date and capturing internal address."""
    if n <= 0:
        return []
    if not internal or not customers:
        raise ValueError("demo mail needs at least one internal user and one customer")
    rng = random.Random(seed)
    by_domain: dict[str, list[Person]] = {}
    for person in customers:
        by_domain.setdefault(_domain(person[1]), []).append(person)
    out: list[DemoMessage] = []
    thread_no = 0
    clock = start if start.tzinfo else start.replace(tzinfo=UTC)
    while len(out) < n:
        thread_no += 1
        clock += timedelta(minutes=rng.randint(5, 240))
        if thread_no == MEETING_THREAD:
            out.append(
                _meeting(rng, seed, thread_no, rng.choice(internal), by_domain, customers, clock)
            )
            continue
        length = min(rng.randint(*thread_lengths), n - len(out))
        out.extend(
            _thread(
                rng,
                seed=seed,
                thread_no=thread_no,
                length=length,
                internal=internal,
                customers=customers,
                by_domain=by_domain,
                start=clock,
                attachment_ratio=attachment_ratio,
                size_range=size_range,
            )
        )
    return out[:n]


# --- threads -------------------------------------------------------------------------------


def _thread(
    rng: random.Random,
    *,
    seed: int,
    thread_no: int,
    length: int,
    internal: Sequence[Person],
    customers: Sequence[Person],
    by_domain: dict[str, list[Person]],
    start: datetime,
    attachment_ratio: float,
    size_range: tuple[int, int],
) -> list[DemoMessage]:
    rep = rng.choice(internal)
    customer = rng.choice(customers)
    colleagues = [p for p in by_domain[_domain(customer[1])] if p != customer]
    subject = _subject(rng, customer)
    # Most threads start with our rep writing; about one in five starts with the customer.
    customer_first = rng.random() < 0.2
    cc: list[Person] = []
    if rng.random() < 0.25:
        pool = colleagues or [p for p in internal if p != rep]
        if pool:
            cc.append(rng.choice(pool))
    out: list[DemoMessage] = []
    refs: list[str] = []
    quoted = ""
    when = start
    for k in range(length):
        from_customer = (k % 2 == 0) == customer_first
        sender, recipient = (customer, rep) if from_customer else (rep, customer)
        mid = f"<demo.{seed}.{thread_no}.{k}.{rng.getrandbits(32):08x}@{_domain(sender[1])}>"
        # Size budget: headers, the attachment (base64: 4/3), then plain and HTML copies of
        # the new text and of the quoted history.
        total = rng.randint(*size_range)
        attachment = None
        if rng.random() < attachment_ratio:
            attachment = _attachment(
                rng, thread_no, k, max(1_500, int(total * rng.uniform(0.3, 0.6) / 1.37))
            )
        spent = (
            1_000 + (len(attachment[2]) * 137 // 100 if attachment else 0) + len(quoted) * 23 // 10
        )
        text = _body(rng, sender, recipient, max(300, (total - spent) * 10 // 22))
        msg = _message(
            sender=sender,
            to=[recipient],
            cc=cc,
            subject=("Re: " if k else "") + subject,
            date=when,
            message_id=mid,
            in_reply_to=refs[-1] if refs else "",
            references=refs[-10:],
            text=text,
            quoted=quoted,
            attachment=attachment,
        )
        _set_boundaries(msg, f"{seed}.{thread_no}.{k}")
        data = msg.as_bytes(policy=policy.SMTP)
        out.append(
            DemoMessage(
                data=data,
                date=when,
                internal_address=rep[1],
                inbound=from_customer,
            )
        )
        refs.append(mid)
        quoted = _quote_block(sender, when, text, quoted)
        when += timedelta(minutes=rng.randint(20, 60 * 48))
    return out


def _message(
    *,
    sender: Person,
    to: list[Person],
    cc: list[Person],
    subject: str,
    date: datetime,
    message_id: str,
    in_reply_to: str,
    references: list[str],
    text: str,
    quoted: str,
    attachment: tuple[str, str, bytes] | None,
) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr(sender)
    msg["To"] = ", ".join(formataddr(p) for p in to)
    if cc:
        msg["Cc"] = ", ".join(formataddr(p) for p in cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references)
    msg["MIME-Version"] = "1.0"
    full_text = text + ("\n\n" + quoted if quoted else "")
    msg.set_content(full_text)
    msg.add_alternative(_html(text, quoted), subtype="html")
    if attachment is not None:
        filename, ctype, payload = attachment
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def _meeting(
    rng: random.Random,
    seed: int,
    thread_no: int,
    organizer: Person,
    by_domain: dict[str, list[Person]],
    customers: Sequence[Person],
    when: datetime,
) -> DemoMessage:
    customer = rng.choice(customers)
    attendees = [customer, *[p for p in by_domain[_domain(customer[1])] if p != customer][:2]]
    topic = rng.choice(_TOPICS)
    start = (when + timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=45)
    uid = f"demo-{seed}-{thread_no}@{INTERNAL_DOMAIN}"
    stamp = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Mailwarden//demo//EN",
        "VERSION:2.0",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{when.astimezone(UTC).strftime(stamp)}",
        f"DTSTART:{start.astimezone(UTC).strftime(stamp)}",
        f"DTEND:{end.astimezone(UTC).strftime(stamp)}",
        f"SUMMARY:Call about {topic}",
        "LOCATION:Video call",
        "SEQUENCE:0",
        f"ORGANIZER;CN={organizer[0]}:mailto:{organizer[1]}",
        *[
            f"ATTENDEE;CN={p[0]};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{p[1]}"
            for p in attendees
        ],
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr(organizer)
    msg["To"] = ", ".join(formataddr(p) for p in attendees)
    msg["Subject"] = f"Invitation: Call about {topic}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<demo.{seed}.{thread_no}.invite@{INTERNAL_DOMAIN}>"
    msg["MIME-Version"] = "1.0"
    first = customer[0].split()[0]
    msg.set_content(
        f"Hi {first},\n\nI have sent you an invitation for a short call about {topic} on "
        f"{start:%A %d %B at %H:%M} UTC.\n\nBest regards,\n{organizer[0]}\n"
    )
    msg.add_alternative("\r\n".join(lines), subtype="calendar", params={"method": "REQUEST"})
    _set_boundaries(msg, f"{seed}.{thread_no}.invite")
    return DemoMessage(
        data=msg.as_bytes(policy=policy.SMTP),
        date=when,
        internal_address=organizer[1],
        inbound=False,
    )


# --- content -------------------------------------------------------------------------------


def _subject(rng: random.Random, customer: Person) -> str:
    org = _org_name(customer[1])
    product = rng.choice(_PRODUCTS)
    choices = (
        f"Quote request: {product} for {org}",
        f"Order PO-{rng.randint(10000, 99999)} confirmation",
        f"TCK-{rng.randint(1000, 9999)}: {rng.choice(_ISSUES)}",
        f"Meeting next week about {rng.choice(_TOPICS)}",
        f"Pricing for {rng.randint(5, 500)} {product}",
        f"Contract renewal {org} {rng.randint(2025, 2027)}",
        f"Delivery schedule for PO-{rng.randint(10000, 99999)}",
        f"Invoice INV-{rng.randint(100000, 999999)} question",
    )
    return rng.choice(choices)


def _body(rng: random.Random, sender: Person, recipient: Person, target: int) -> str:
    parts = [rng.choice(_GREETINGS).format(first=recipient[0].split()[0]), ""]
    size = 0
    while size < target:
        paragraph = " ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(2, 5)))
        parts.extend([paragraph, ""])
        size += len(paragraph) + 2
    parts.extend([rng.choice(_CLOSINGS), sender[0]])
    return "\n".join(parts)


def _quote_block(sender: Person, when: datetime, text: str, earlier: str) -> str:
    # Quote the previous message (and what it quoted) like a mail client, capped so a long
    # thread does not grow without bound.
    body = text + ("\n\n" + earlier if earlier else "")
    lines = [f"On {when:%a, %d %b %Y at %H:%M}, {sender[0]} <{sender[1]}> wrote:"]
    lines.extend("> " + line if line else ">" for line in body.splitlines())
    return "\n".join(lines)[:3000]


def _html(text: str, quoted: str) -> str:
    paragraphs = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p
    )
    quote = (
        f'<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">'
        f"{html.escape(quoted).replace(chr(10), '<br>')}</blockquote>"
        if quoted
        else ""
    )
    return f'<html><body style="font-family:sans-serif">{paragraphs}{quote}</body></html>'


def _attachment(rng: random.Random, thread_no: int, k: int, size: int) -> tuple[str, str, bytes]:
    if rng.random() < 0.6:
        head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        return (
            f"quote-{thread_no}-{k}.pdf",
            "application/pdf",
            head + rng.randbytes(size) + b"\n%%EOF\n",
        )
    head = b"PK\x03\x04\x14\x00\x06\x00\x08\x00"
    return (
        f"order-lines-{thread_no}-{k}.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        head + rng.randbytes(size),
    )


def _set_boundaries(msg: EmailMessage, tag: str) -> None:
    # email picks random boundaries from the global RNG; fixed ones keep a seed's bytes stable.
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_mw_{tag}.{i}")


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _org_name(address: str) -> str:
    label = _domain(address).split(".")[0]
    return " ".join(w.capitalize() for w in label.replace("_", "-").split("-") if w) or label


# --- feeding the pipeline ----------------------------------------------------------------


def demo_people(limit: int = 400) -> tuple[list[Person], list[Person]]:
    """Internal users (addresses at the internal domains) and customer contacts, from the CRM."""
    from crm.models import ContactEmail, User
    from governance.models import OrgSettings

    domains = {d.lower() for d in OrgSettings.load().internal_domains or []} or {INTERNAL_DOMAIN}
    internal: list[Person] = []
    for user in User.objects.filter(is_active=True).exclude(email="").order_by("pk"):
        if _domain(user.email) in domains:
            name = user.get_full_name() or user.username.capitalize()
            internal.append((name, user.email.lower()))
    customers: list[Person] = []
    rows = (
        ContactEmail.objects.filter(is_primary=True, contact__organization__isnull=False)
        .select_related("contact")
        .order_by("contact_id")[:limit]
    )
    for row in rows:
        name = f"{row.contact.first_name} {row.contact.last_name}".strip() or row.address
        customers.append((name, row.address))
    return internal, customers


def feed_demo_mail(
    *,
    messages: int = 300,
    seed: int = 42,
    start: datetime | None = None,
    progress: Callable[[int], object] | None = None,
    set_total: Callable[[int], object] | None = None,
) -> dict:
    """Store generated demo mail as raw messages and process it; idempotent per seed.
    `set_total(n)` is told how many messages will be processed, `progress(k)` after each batch."""
    from django.utils import timezone

    from capture.intake import RawSpec, store_raw_messages
    from capture.models import RawMessage
    from capture.pipeline import process_raw_messages
    from crm.models import User

    prefix = f"demo:{seed}:"
    have = set(
        RawMessage.objects.filter(idempotency_key__startswith=prefix).values_list(
            "idempotency_key", flat=True
        )
    )
    wanted = [i for i in range(messages) if f"{prefix}{i}" not in have]
    stored = 0
    if wanted:
        internal, customers = demo_people()
        if not internal or not customers:
            raise ValueError("demo mail needs internal users and customer contacts (seed the CRM)")
        start = start or (timezone.now() - timedelta(days=60)).replace(
            minute=0, second=0, microsecond=0
        )
        generated = generate_demo_messages(
            n=messages, seed=seed, internal=internal, customers=customers, start=start
        )
        users = {
            e.lower(): pk for pk, e in User.objects.exclude(email="").values_list("pk", "email")
        }
        missing = set(wanted)
        specs = [
            RawSpec(
                data=m.data,
                channel=DEMO_CHANNEL,
                user_id=users.get(m.internal_address),
                source=f"demo seed {seed}",
                idempotency_key=f"{prefix}{i}",
                received_at=m.date,
            )
            for i, m in enumerate(generated)
            if i in missing
        ]
        for chunk in range(0, len(specs), INGEST_BATCH):
            store_raw_messages(specs[chunk : chunk + INGEST_BATCH], enqueue=False)
        stored = len(specs)
    todo = list(
        RawMessage.objects.filter(
            idempotency_key__startswith=prefix,
            status__in=[RawMessage.Status.PENDING, RawMessage.Status.FAILED],
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if set_total is not None:
        set_total(len(todo))
    for chunk in range(0, len(todo), INGEST_BATCH):
        process_raw_messages(todo[chunk : chunk + INGEST_BATCH])
        if progress is not None:
            progress(len(todo[chunk : chunk + INGEST_BATCH]))
    statuses = Counter(
        RawMessage.objects.filter(idempotency_key__startswith=prefix).values_list(
            "status", flat=True
        )
    )
    return {"stored": stored, "processed_now": len(todo), **dict(sorted(statuses.items()))}


DEMO_CATEGORIES = ("Order", "Quote", "Complaint", "Support", "Prospect")


def seed_demo_policy() -> dict[str, int]:
    """The demo's categories and link rules (idempotent; through the audited services), so
    captured demo mail links to deals, leads and tickets as it would in production."""
    from capture.categories import create_category
    from capture.links import save_link_rule
    from capture.models import Category, LinkRule

    made = {"categories": 0, "link_rules": 0}
    for order, name in enumerate(DEMO_CATEGORIES):
        if not Category.objects.filter(name=name).exists():
            create_category(name, order=order, actor="seed_demo", channel="cli")
            made["categories"] += 1
    rules = [
        LinkRule(
            position=10,
            kind="deal",
            strategy=LinkRule.Strategy.SINGLE_OPEN,
            description="Pipedrive: the contacts' one open deal; several go to review",
        ),
        LinkRule(
            position=20,
            kind="ticket",
            strategy=LinkRule.Strategy.REFERENCE,
            pattern=r"\bTCK-\d{3,}\b",
            description="A ticket key in the subject or body links that ticket",
        ),
        LinkRule(
            position=30,
            kind="lead",
            strategy=LinkRule.Strategy.RECENT_OPEN,
            recent_count=5,
            description="HubSpot: the five most recently active open leads",
        ),
    ]
    for rule in rules:
        if not LinkRule.objects.filter(kind=rule.kind, strategy=rule.strategy).exists():
            save_link_rule(rule, actor="seed_demo", channel="cli")
            made["link_rules"] += 1
    made.update(seed_demo_retention())
    return made


def seed_demo_retention() -> dict[str, int]:
    """One retention policy and one legal hold, so the embedded demo shows both (idempotent;
    through the audited services). docs/retention.md."""
    from capture.holds import hold_placed
    from capture.models import LegalHold, RetentionPolicy
    from capture.retention import policy_saved
    from crm.models import Organization

    made = {"retention_policies": 0, "legal_holds": 0}
    if not RetentionPolicy.objects.exists():
        policy = RetentionPolicy.objects.create(
            name="Mail linked to nothing: delete two years after the last activity",
            trigger=RetentionPolicy.Trigger.THREAD_ACTIVITY,
            duration_days=730,
            action=RetentionPolicy.Action.DELETE,
            unlinked_only=True,
        )
        policy_saved(policy, created=True, actor="seed_demo", channel="cli")
        made["retention_policies"] = 1
    org = Organization.objects.order_by("pk").first()
    if org is not None and not LegalHold.objects.exists():
        hold = LegalHold.objects.create(
            name=f"Demo hold: {org.name}", reason="Demo: a dispute with this customer."
        )
        hold.organizations.set([org])
        hold_placed(hold, actor="seed_demo", channel="cli")
        made["legal_holds"] = 1
    return made
