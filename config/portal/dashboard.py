"""The admin dashboard: figures computed by a task into one summary row, charts rendered on
the server as SVG (pygal, no script, nothing from another origin).

`compute_figures` does the counting (seconds at a million messages; run by the beat task
`portal.refresh_dashboard` every MAILWARDEN_DASHBOARD_REFRESH_SECONDS). The admin index only
reads the newest `DashboardSnapshot` row, so a page view costs one indexed query whatever the
size of the tables (docs/admin.md "Dashboard"). Each figure links to the admin list behind it,
and each panel is shown only to a user who may view that list.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Min
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

log = logging.getLogger(__name__)

MANUAL_LINK_SOURCES = ("manual", "addin", "review")
RAW_STATES = ("pending", "rejected", "failed")
PURGE_WINDOWS = (7, 30, 90)
# labels stored in the snapshot in English, translated when the panels are built
REVIEW_AGE_BUCKETS = (
    (gettext_noop("under 1 day"), 0, 1),
    (gettext_noop("1-7 days"), 1, 7),
    (gettext_noop("over 7 days"), 7, None),
)
# the raw states' labels (state.capitalize()), for makemessages
RAW_STATE_LABELS = (gettext_noop("Pending"), gettext_noop("Rejected"), gettext_noop("Failed"))


# --- optional models (being built in parallel): looked up by name, "—" when absent -------------


def optional_model(*labels: str):
    """The first of `labels` ("app.Model") that is installed, else None."""
    for label in labels:
        try:
            return apps.get_model(label)
        except (LookupError, ValueError):
            continue
    return None


def _field_names(model) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def active_holds_count() -> int:
    from capture.models import LegalHold

    return LegalHold.objects.filter(active=True).count()


def tracking_counts() -> dict[str, int]:
    """Opens (people and likely machines apart) and clicks."""
    from capture.models import TrackingEvent

    counts = {"opens": 0, "machine_opens": 0, "clicks": 0}
    for row in TrackingEvent.objects.values("kind", "machine").annotate(n=Count("pk")):
        if row["kind"] == TrackingEvent.Kind.CLICK:
            counts["clicks"] += row["n"]
        elif row["kind"] == TrackingEvent.Kind.OPEN:
            counts["machine_opens" if row["machine"] else "opens"] += row["n"]
    return counts


# --- computing ---------------------------------------------------------------------------


def compute_figures(now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the dashboard (JSON-serialisable)."""
    from capture.models import (
        EmailMessage,
        MailboxConnection,
        RawMessage,
        ReviewItem,
        Thread,
        ThreadLink,
    )
    from crm.models import Contact
    from governance.consent import current_bases

    now = now or timezone.now()
    days = settings.MAILWARDEN_DASHBOARD_DAYS
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    day_list = [first_day + timedelta(days=i) for i in range(days)]

    # Captured = stored by the pipeline (processed_at): the day the mail reached the CRM,
    # whatever date it carries (an import of old mail counts on the day of the import).
    captured: dict[str, list[int]] = {}
    rows = (
        RawMessage.objects.filter(processed_at__gte=start, status="processed")
        .annotate(day=TruncDate("processed_at"))
        .values("day", "channel")
        .annotate(n=Count("id"))
    )
    index = {d: i for i, d in enumerate(day_list)}
    for row in rows:
        i = index.get(row["day"])
        if i is not None:
            captured.setdefault(row["channel"], [0] * days)[i] += row["n"]

    threads = Thread.objects.count()
    linked = ThreadLink.objects.values("thread_id").distinct().count()
    manual = (
        ThreadLink.objects.filter(source__in=MANUAL_LINK_SOURCES)
        .values("thread_id")
        .distinct()
        .count()
    )

    open_reviews = ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
    oldest = open_reviews.aggregate(m=Min("created"))["m"]
    review_age: list[list] = []  # ordered pairs: jsonb does not keep a dict's key order
    for label, low, high in REVIEW_AGE_BUCKETS:
        qs = open_reviews.filter(created__lte=now - timedelta(days=low))
        if high is not None:
            qs = qs.filter(created__gt=now - timedelta(days=high))
        review_age.append([label, qs.count()])

    raw = dict.fromkeys(RAW_STATES, 0)
    for row in (
        RawMessage.objects.filter(status__in=RAW_STATES).values("status").annotate(n=Count("id"))
    ):
        raw[row["status"]] = row["n"]

    # the same states as the mailbox list's "state" filter (capture/admin/mailboxes.py)
    mailboxes = MailboxConnection.objects.filter(enabled=True)
    erroring = mailboxes.filter(paused_reason="").exclude(last_error="").count()
    paused = MailboxConnection.objects.exclude(paused_reason="").count()
    stale = 0
    for last, interval in mailboxes.values_list("last_sync_at", "interval_minutes"):
        if last is None or last < now - timedelta(minutes=3 * max(interval, 1)):
            stale += 1
    gaps = mailboxes.filter(reconcile_gap__gt=0)
    gap_uids = sum(gaps.values_list("reconcile_gap", flat=True))

    consent: dict[str, int] = {}
    contact_ids = Contact.objects.order_by("pk").values_list("pk", flat=True)
    batch: list[int] = []
    for pk in contact_ids.iterator(chunk_size=5000):
        batch.append(pk)
        if len(batch) == 5000:
            _count_bases(current_bases(batch, now), consent)
            batch = []
    if batch:
        _count_bases(current_bases(batch, now), consent)

    expiring = EmailMessage.objects.filter(expires_at__isnull=False)
    purge = {
        str(n): expiring.filter(expires_at__lte=now + timedelta(days=n)).count()
        for n in PURGE_WINDOWS
    }

    return {
        "now": now.isoformat(),
        "days": [d.isoformat() for d in day_list],
        "captured": captured,
        "linking": {"auto": linked - manual, "manual": manual, "unlinked": threads - linked},
        "review": {
            "open": sum(n for _, n in review_age),
            "oldest": oldest.isoformat() if oldest else None,
            "age": review_age,
        },
        "raw": raw,
        "mailboxes": {
            "enabled": mailboxes.count(),
            "erroring": erroring,
            "paused": paused,
            "stale": stale,
            "with_gaps": gaps.count(),
            "gap_uids": gap_uids,
        },
        "consent": consent,
        "purge": purge,
        "holds": active_holds_count(),
        "tracking": tracking_counts(),
    }


def _count_bases(states: dict, into: dict[str, int]) -> None:
    for state in states.values():
        into[state.basis] = into.get(state.basis, 0) + 1


def refresh_snapshot():
    """Compute the figures and store them as the newest snapshot (older ones are pruned)."""
    from config.portal.models import DashboardSnapshot

    began = time.monotonic()
    figures = compute_figures()
    snapshot = DashboardSnapshot.objects.create(
        figures=figures, duration_ms=int((time.monotonic() - began) * 1000)
    )
    keep = DashboardSnapshot.objects.order_by("-computed_at").values_list("pk", flat=True)[:10]
    DashboardSnapshot.objects.exclude(pk__in=list(keep)).delete()
    log.info("dashboard figures refreshed in %d ms", snapshot.duration_ms)
    return snapshot


def latest_snapshot():
    """The newest snapshot; computed now if there is none yet (first view after install)."""
    from config.portal.models import DashboardSnapshot

    snapshot = DashboardSnapshot.objects.order_by("-computed_at").first()
    return snapshot if snapshot is not None else refresh_snapshot()


# --- rendering ---------------------------------------------------------------------------


def _day_start(d: date) -> str:
    """Midnight of `d` in the current time zone, as an aware ISO date-time for a list filter."""
    return timezone.make_aware(datetime.combine(d, datetime.min.time())).isoformat()


def _changelist(label: str, **params: Any) -> str | None:
    app_label, model_name = label.lower().split(".")
    try:
        url = reverse(f"admin:{app_label}_{model_name}_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(params)}" if params else url


def _can_view(user, label: str) -> bool:
    app_label, model_name = label.lower().split(".")
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(
        f"{app_label}.change_{model_name}"
    )


def _style():
    from pygal.style import Style

    return Style(
        background="transparent",
        plot_background="transparent",
        font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
        colors=(
            "#417690",
            "#79aec8",
            "#e0a040",
            "#ba2121",
            "#5b9a68",
            "#8a6fb0",
            "#777",
            "#c0c0c0",
        ),
        title_font_size=14,
        legend_font_size=11,
        label_font_size=10,
    )


def _chart(kind: str, title: str, **options: Any):
    """A pygal chart configured to emit self-contained SVG: no script, no external CSS."""
    import pygal

    cls = getattr(pygal, kind)
    return cls(
        title=title,
        style=_style(),
        js=[],  # pygal's default loads its tooltip script from a CDN
        disable_xml_declaration=True,
        width=options.pop("width", 640),
        height=options.pop("height", 300),
        legend_at_bottom=True,
        print_values=False,
        no_data_text=gettext("No data"),
        **options,
    )


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


def _svg(chart) -> str:
    """The chart's SVG without pygal's inline config script: the page runs no chart code
    (the links are plain SVG <a> elements)."""
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def _integer_axis(chart, values: list[int]) -> None:
    """Whole-number ticks on the value axis (pygal picks 0.1 steps for small counts)."""
    if not values:  # no series: pygal draws "No data" and cannot place labels
        return
    top = max(values)
    if top < 10:
        chart.y_labels = list(range(0, max(top, 1) + 1))


def _link(value: int, href: str | None, label: str) -> dict[str, Any]:
    point: dict[str, Any] = {"value": value, "label": label}
    if href:
        point["xlink"] = {"href": href, "target": "_top"}
    return point


def build_panels(figures: dict[str, Any], user) -> list[dict[str, Any]]:
    """The dashboard's panels the user may see: a title, an SVG chart, figures with links."""
    panels: list[dict[str, Any]] = []
    raw_label = "capture.RawMessage"
    days = [date.fromisoformat(d) for d in figures.get("days", [])]

    if _can_view(user, raw_label):
        chart = _chart(
            "StackedBar",
            gettext("Mail captured per day, by channel"),
            x_label_rotation=-45,
            show_minor_x_labels=False,
        )
        chart.x_labels = [d.strftime("%d %b") for d in days]
        chart.x_labels_major = [d.strftime("%d %b") for d in days[:: max(1, len(days) // 6)]]
        totals = []
        per_day = [sum(c) for c in zip(*figures.get("captured", {}).values(), strict=False)]
        _integer_axis(chart, per_day)
        for channel, counts in sorted(figures.get("captured", {}).items()):
            points = []
            for d, n in zip(days, counts, strict=False):
                href = _changelist(
                    raw_label,
                    channel__exact=channel,
                    status__exact="processed",
                    processed_at__gte=_day_start(d),
                    processed_at__lt=_day_start(d + timedelta(days=1)),
                )
                points.append(_link(n, href, f"{channel} {d:%d %b}: {n}"))
            chart.add(channel, points)
            totals.append(
                {
                    "label": channel,
                    "value": sum(counts),
                    "href": _changelist(
                        raw_label,
                        channel__exact=channel,
                        status__exact="processed",
                        processed_at__gte=_day_start(days[0]) if days else "",
                    ),
                }
            )
        panels.append(
            {
                "id": "captured",
                "title": gettext("Mail captured in the last %(days)d days") % {"days": len(days)},
                "svg": _svg(chart),
                "figures": totals,
            }
        )

    if _can_view(user, "capture.ThreadLink"):
        linking = figures.get("linking", {})
        hrefs = {
            "auto": _changelist("capture.ThreadLink"),
            "manual": _changelist("capture.ThreadLink", source__in=",".join(MANUAL_LINK_SOURCES)),
            "unlinked": _changelist("capture.Thread", links__isnull="True"),
        }
        labels = {
            "auto": gettext("Auto-linked"),
            "manual": gettext("Linked by hand"),
            "unlinked": gettext("Unlinked"),
        }
        chart = _chart(
            "Pie", gettext("Threads by how they were linked"), inner_radius=0.45, height=260
        )
        for key in ("auto", "manual", "unlinked"):
            chart.add(labels[key], [_link(linking.get(key, 0), hrefs[key], labels[key])])
        total = sum(linking.values()) or 1
        panels.append(
            {
                "id": "linking",
                "title": gettext("Linking"),
                "svg": _svg(chart),
                "figures": [
                    {
                        "label": labels[k],
                        "value": linking.get(k, 0),
                        "note": f"{100 * linking.get(k, 0) / total:.0f} %",
                        "href": hrefs[k],
                    }
                    for k in ("auto", "manual", "unlinked")
                ],
            }
        )

    if _can_view(user, "capture.ReviewItem"):
        review = figures.get("review", {})
        base = {"status__exact": "open"}
        chart = _chart("Bar", gettext("Open review items by age"), height=240, show_legend=False)
        ages = review.get("age", [])
        chart.x_labels = [gettext(label) for label, _ in ages]
        _integer_axis(chart, [n for _, n in ages])
        chart.add(
            "open",
            [
                _link(n, _changelist("capture.ReviewItem", **base), f"{gettext(label)}: {n}")
                for label, n in ages
            ],
        )
        oldest = review.get("oldest")
        panels.append(
            {
                "id": "review",
                "title": gettext("Review backlog"),
                "svg": _svg(chart),
                "figures": [
                    {
                        "label": gettext("Open"),
                        "value": review.get("open", 0),
                        "href": _changelist("capture.ReviewItem", **base),
                    },
                    {
                        "label": gettext("Oldest open since"),
                        "value": datetime.fromisoformat(oldest).strftime("%Y-%m-%d %H:%M")
                        if oldest
                        else "—",
                        "href": _changelist("capture.ReviewItem", o="4", **base),
                    },
                ],
            }
        )

    if _can_view(user, raw_label):
        raw = figures.get("raw", {})
        panels.append(
            {
                "id": "raw",
                "title": gettext("Raw messages needing attention"),
                "figures": [
                    {
                        "label": gettext(state.capitalize()),
                        "value": raw.get(state, 0),
                        "href": _changelist(raw_label, status__exact=state),
                    }
                    for state in RAW_STATES
                ],
            }
        )

    if _can_view(user, "capture.MailboxConnection"):
        mb = figures.get("mailboxes", {})
        label = "capture.MailboxConnection"
        panels.append(
            {
                "id": "mailboxes",
                "title": gettext("Mailbox sync health"),
                "figures": [
                    {
                        "label": gettext("Enabled"),
                        "value": mb.get("enabled", 0),
                        "href": _changelist(label, enabled__exact="1"),
                    },
                    {
                        "label": gettext("Last run failed"),
                        "value": mb.get("erroring", 0),
                        "href": _changelist(label, state="error"),
                    },
                    {
                        "label": gettext("Paused"),
                        "value": mb.get("paused", 0),
                        "href": _changelist(label, state="paused"),
                    },
                    {
                        "label": gettext("Not synced lately"),
                        "value": mb.get("stale", 0),
                        "href": _changelist(label, enabled__exact="1", o="6"),
                    },
                    {
                        "label": gettext("Reconciliation gaps"),
                        "value": mb.get("with_gaps", 0),
                        "note": gettext("%(n)s messages unaccounted for")
                        % {"n": mb.get("gap_uids", 0)},
                        "href": _changelist(label, reconcile_gap__gt="0"),
                    },
                ],
            }
        )

    if _can_view(user, "governance.ConsentRecord"):
        from governance.models import ConsentRecord

        consent = figures.get("consent", {})
        chart = _chart(
            "HorizontalBar", gettext("Contacts by legal basis"), height=280, show_legend=False
        )
        # str(): the labels are lazy translations, and pygal JSON-encodes its labels
        names = {basis: str(label) for basis, label in ConsentRecord.Basis.choices}
        ordered = sorted(consent.items(), key=lambda kv: -kv[1])
        chart.x_labels = [names.get(b, b) for b, _ in ordered]
        _integer_axis(chart, [n for _, n in ordered])
        points, rows = [], []
        for basis, n in ordered:
            href = (
                _changelist("crm.Contact")
                if basis == "none"
                else _changelist(
                    "governance.ConsentRecord", purpose__exact="processing", basis__exact=basis
                )
            )
            points.append(_link(n, href, names.get(basis, basis)))
            rows.append({"label": names.get(basis, basis), "value": n, "href": href})
        chart.add("contacts", points)
        panels.append(
            {
                "id": "consent",
                "title": gettext("Consent coverage"),
                "svg": _svg(chart),
                "figures": rows,
            }
        )

    if _can_view(user, "capture.EmailMessage"):
        purge = figures.get("purge", {})
        now = datetime.fromisoformat(figures["now"]) if figures.get("now") else timezone.now()
        panels.append(
            {
                "id": "purge",
                "title": gettext("Mail due for purge"),
                "figures": [
                    {
                        "label": gettext("within %(n)d days") % {"n": n},
                        "value": purge.get(str(n), 0),
                        "href": _changelist(
                            "capture.EmailMessage",
                            expires_at__lte=(now + timedelta(days=n)).isoformat(),
                        ),
                    }
                    for n in PURGE_WINDOWS
                ],
            }
        )

    holds_model = optional_model("capture.LegalHold")
    holds = figures.get("holds")
    if holds_model is None or _can_view(user, holds_model._meta.label):
        panels.append(
            {
                "id": "holds",
                "title": gettext("Legal holds"),
                "figures": [
                    {
                        "label": gettext("Active"),
                        "value": "—" if holds is None else holds,
                        "href": _changelist(holds_model._meta.label) if holds_model else None,
                    }
                ],
            }
        )

    tracking = figures.get("tracking")
    panels.append(
        {
            "id": "tracking",
            "title": gettext("Tracking"),
            "figures": [
                {
                    "label": gettext("Opens (people)"),
                    "value": "—" if tracking is None else tracking.get("opens", "—"),
                },
                {
                    "label": gettext("Opens (machines)"),
                    "value": "—" if tracking is None else tracking.get("machine_opens", "—"),
                },
                {
                    "label": gettext("Clicks"),
                    "value": "—" if tracking is None else tracking.get("clicks", "—"),
                },
            ],
        }
    )
    return panels


# The lists whose view permission decides which panels a user sees (build_panels).
PANEL_MODELS = (
    "capture.RawMessage",
    "capture.ThreadLink",
    "capture.ReviewItem",
    "capture.MailboxConnection",
    "governance.ConsentRecord",
    "capture.EmailMessage",
    "governance.LegalHold",
)


def cached_panels(snapshot, user) -> list[dict[str, Any]]:
    """The panels for this snapshot and this user's set of permissions, rendered once per
    snapshot (the SVG rendering is most of the page's time) and kept in the cache."""
    from django.core.cache import cache

    seen = "".join("1" if _can_view(user, label) else "0" for label in PANEL_MODELS)
    # per language too: the panels carry translated titles and labels
    language = translation.get_language() or settings.LANGUAGE_CODE
    key = f"mw:dashboard:{snapshot.pk}:{snapshot.computed_at.timestamp()}:{seen}:{language}"
    panels = cache.get(key)
    if panels is None:
        panels = build_panels(snapshot.figures, user)
        cache.set(key, panels, 2 * settings.MAILWARDEN_DASHBOARD_REFRESH_SECONDS)
    return panels


def dashboard_context(request) -> dict[str, Any]:
    snapshot = latest_snapshot()
    refresh = settings.MAILWARDEN_DASHBOARD_REFRESH_SECONDS
    age = (timezone.now() - snapshot.computed_at).total_seconds()
    return {
        "dashboard_panels": cached_panels(snapshot, request.user),
        "dashboard_computed_at": snapshot.computed_at,
        "dashboard_stale": age > 3 * refresh,
        "dashboard_duration_ms": snapshot.duration_ms,
    }
