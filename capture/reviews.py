"""Disposition review (docs/retention.md): a due message under a review policy waits for its
named reviewer, who approves (disposal), extends or relabels with a justification; every
decision is audited and kept as proof of disposition. A weekly reminder mails the reviewers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.translation import gettext

from capture.models import DispositionReview, EmailMessage, RetentionPolicy
from capture.purge import dispose_now
from governance.audit import record_event

Action = RetentionPolicy.Action


# --- disposition review ------------------------------------------------------------------


class ReviewRejected(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def decide_review(
    review: DispositionReview,
    decision: str,
    *,
    justification: str,
    actor: Any,
    channel: str,
    address: str = "",
    extend_to: datetime | None = None,
    new_policy: RetentionPolicy | None = None,
) -> DispositionReview:
    """The named reviewer (or an admin) approves, extends or relabels, with a justification."""
    errors: dict[str, list[str]] = {}
    if not (justification or "").strip():
        errors["justification"] = [gettext("A justification is required.")]
    if decision not in ("approve", "extend", "relabel"):
        errors["decision"] = [gettext("Choose approve, extend or relabel.")]
    if decision == "extend" and (extend_to is None or extend_to <= timezone.now()):
        errors["extend_to"] = [gettext("Extending needs a future date.")]
    if decision == "relabel" and new_policy is None:
        errors["new_policy"] = [gettext("Relabelling needs the policy to apply.")]
    if errors:
        raise ReviewRejected(errors)
    with transaction.atomic():
        review = DispositionReview.objects.select_for_update().get(pk=review.pk)
        if review.status != DispositionReview.Status.PENDING:
            raise ReviewRejected(
                {"status": [gettext("Already decided (%(status)s).") % {"status": review.status}]}
            )
        user = actor if getattr(actor, "is_authenticated", False) else None
        review.decided_by, review.decided_at = user, timezone.now()
        review.justification = justification.strip()
        email = review.email
        if decision == "approve":
            review.status = DispositionReview.Status.APPROVED
            if email is not None:
                dispose_now([email.pk], reason="review_approved", actor=actor)
                review.email = None  # gone (the bin keeps it); email_ref remembers it
        elif decision == "extend":
            review.status, review.extended_to = DispositionReview.Status.EXTENDED, extend_to
            if email is not None:
                EmailMessage.objects.filter(pk=email.pk).update(
                    expires_at=extend_to,
                    expiry_action=Action.REVIEW,
                    expiry_rule="review_extended",
                    disposition="reviewed",
                )
        else:
            review.status, review.new_policy = DispositionReview.Status.RELABELLED, new_policy
            if email is not None:
                EmailMessage.objects.filter(pk=email.pk).update(
                    expires_at=None
                    if new_policy.action == Action.RETAIN
                    else timezone.now() + timedelta(days=new_policy.duration_days),
                    expiry_policy=new_policy,
                    expiry_action=new_policy.action,
                    expiry_rule="relabelled",
                    disposition="reviewed",
                )
        review.save()
        record_event(
            f"retention.review_{review.status}",
            actor=actor,
            obj=review,
            channel=channel,
            address=address,
            detail={
                "email": review.email_ref,
                "policy": review.policy_id,
                "decision": decision,
                "extended_to": extend_to.isoformat() if extend_to else None,
                "new_policy": new_policy.pk if new_policy else None,
            },
        )
    return review


def pending_reviews_by_reviewer() -> dict[int, int]:
    return dict(
        DispositionReview.objects.filter(
            status=DispositionReview.Status.PENDING, reviewer__isnull=False
        )
        .values("reviewer_id")
        .annotate(n=Count("pk"))
        .values_list("reviewer_id", "n")
    )


def send_review_reminders() -> int:
    """Weekly: mail each reviewer how many dispositions wait for them (Django's mail backend)."""
    from django.core.mail import send_mail

    from crm.models import User

    sent = 0
    pending = pending_reviews_by_reviewer()
    oldest = dict(
        DispositionReview.objects.filter(status=DispositionReview.Status.PENDING)
        .values("reviewer_id")
        .annotate(first=Min("created"))
        .values_list("reviewer_id", "first")
    )
    for user in User.objects.filter(pk__in=pending, is_active=True).exclude(email=""):
        n = pending[user.pk]
        send_mail(
            subject=f"Mailwarden: {n} disposition review(s) waiting",
            message=(
                f"{n} message(s) are due for disposition and wait for your review "
                f"(the oldest since {oldest[user.pk]:%Y-%m-%d}).\n"
                "Approve, extend or relabel them in the admin: Capture > Disposition reviews."
            ),
            from_email=None,
            recipient_list=[user.email],
        )
        sent += 1
    record_event("retention.review_reminders", actor="worker", detail={"reviewers": sent})
    return sent
