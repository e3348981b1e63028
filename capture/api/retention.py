"""Retention over the API (docs/retention.md, docs/api.md): policies (with a preview of what a
change makes due), legal holds (place, change, release, coverage), purge runs and the next
run's plan, the bin (restore), disposition reviews (decide), recompute jobs, and each
message's "why does this expire then?". Thin views over capture.retention, capture.holds and
capture.purge, which audit every change. Governance admins only (tokens: governance:admin)."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from capture import holds as hold_service
from capture import purge as purge_service
from capture import retention as service
from capture import reviews
from capture.models import (
    BinnedMessage,
    DispositionReview,
    EmailMessage,
    ExpiryJob,
    LegalHold,
    PurgeRun,
    RetentionPolicy,
)
from core.api import StrictModelSerializer, StrictSerializer, error_response
from governance.api.views import GovernanceView
from governance.audit import actor_from_request, client_address


def _audit(request) -> dict:
    return {
        "actor": actor_from_request(request),
        "channel": "api",
        "address": client_address(request),
    }


def _dry_run(request) -> bool:
    return str(request.query_params.get("dry_run", "")).lower() in ("1", "true", "yes")


class RetentionPolicySerializer(StrictModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = (
            "id",
            "name",
            "description",
            "enabled",
            "order",
            "link_kinds",
            "organizations",
            "categories",
            "channels",
            "directions",
            "stored_levels",
            "legal_bases",
            "unlinked_only",
            "trigger",
            "duration_days",
            "action",
            "reviewer",
            "created",
            "updated",
        )
        read_only_fields = ("id", "created", "updated")
        extra_kwargs = {
            "duration_days": {"max_value": 36500},
            "order": {"min_value": -1_000_000, "max_value": 1_000_000},
        }

    def validate(self, attrs):
        data = {**self._current(), **attrs}
        errors = service.validate_policy(data)
        if errors:
            raise ValidationError(errors)
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {
            "action": self.instance.action,
            "reviewer": self.instance.reviewer,
            **{f: getattr(self.instance, f) for f in service.SCOPE_LIST_FIELDS},
        }


class PreviewSerializer(serializers.Serializer):
    before = serializers.DictField(child=serializers.IntegerField())
    after = serializers.DictField(child=serializers.IntegerField())
    newly_due = serializers.DictField(child=serializers.IntegerField())


DRY_RUN = OpenApiParameter(
    "dry_run", bool, description="Only answer what the change would make due (nothing saved)."
)


class RetentionPolicyViewSet(GovernanceView, viewsets.ModelViewSet):
    """Ordered retention policies. Saving recomputes expiry in bulk (see `/expiry-jobs/`);
    `?dry_run=1` (or `POST preview/`) answers how many messages would be due now / 7 / 30 /
    90 days instead of saving."""

    serializer_class = RetentionPolicySerializer
    queryset = RetentionPolicy.objects.all().prefetch_related("organizations")
    pagination_class = None  # a short, admin-made list
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _preview_or_save(self, request, serializer, *, created: bool):
        serializer.is_valid(raise_exception=True)
        instance = serializer.instance
        if _dry_run(request):
            data = {**(serializer._current() if instance else {}), **serializer.validated_data}
            if instance is not None:
                for f in ("trigger", "duration_days", "order", "enabled", "unlinked_only"):
                    data.setdefault(f, getattr(instance, f))
                data.setdefault("organizations", list(instance.organizations.all()))
            return Response(service.preview(data, pk=instance.pk if instance else None))
        with transaction.atomic():
            policy = serializer.save()
            service.policy_saved(policy, created=created, **_audit(request))
        return Response(
            RetentionPolicySerializer(policy).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[DRY_RUN], responses={201: RetentionPolicySerializer, 200: PreviewSerializer}
    )
    def create(self, request, *args, **kwargs):
        return self._preview_or_save(request, self.get_serializer(data=request.data), created=True)

    @extend_schema(parameters=[DRY_RUN], responses={200: RetentionPolicySerializer})
    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        return self._preview_or_save(request, serializer, created=False)

    @extend_schema(parameters=[DRY_RUN], responses={204: None, 200: PreviewSerializer})
    def destroy(self, request, *args, **kwargs):
        policy = self.get_object()
        if _dry_run(request):
            return Response(service.preview(None, pk=policy.pk, delete=True))
        service.delete_policy(policy, **_audit(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RetentionPolicySerializer, responses=PreviewSerializer)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(service.preview(dict(serializer.validated_data)))


class LegalHoldSerializer(StrictModelSerializer):
    coverage = serializers.SerializerMethodField()

    class Meta:
        model = LegalHold
        fields = (
            "id",
            "name",
            "reason",
            "active",
            "contacts",
            "organizations",
            "items",
            "threads",
            "date_from",
            "date_to",
            "saved_filter",
            "created_by",
            "created",
            "released_at",
            "released_by",
            "coverage",
        )
        read_only_fields = (
            "id",
            "active",
            "created_by",
            "created",
            "released_at",
            "released_by",
            "coverage",
        )

    def get_coverage(self, hold: LegalHold) -> dict[str, int]:
        return hold_service.coverage(hold) if hold.active else {"messages": 0, "threads": 0}

    def validate_saved_filter(self, value):
        errors = hold_service.validate_saved_filter(value)
        if errors:
            raise ValidationError(errors)
        return value

    def validate(self, attrs):
        start = attrs.get("date_from", getattr(self.instance, "date_from", None))
        end = attrs.get("date_to", getattr(self.instance, "date_to", None))
        if start and end and start > end:
            raise ValidationError({"date_to": ["Must not be before date_from."]})
        return attrs


class LegalHoldViewSet(
    GovernanceView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Legal holds: nothing they cover is purged, redacted, anonymised or erased while
    active. Holds are released (`POST {id}/release/`), never deleted."""

    serializer_class = LegalHoldSerializer
    queryset = LegalHold.objects.all().prefetch_related(
        "contacts", "organizations", "items", "threads"
    )
    filterset_fields = ["active"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        with transaction.atomic():
            user = self.request.user if self.request.user.is_authenticated else None
            hold = serializer.save(created_by=user)
            hold_service.hold_placed(hold, **_audit(self.request))

    def perform_update(self, serializer):
        if not serializer.instance.active:
            raise ValidationError({"active": ["A released hold cannot change."]})
        with transaction.atomic():
            hold = serializer.save()
            hold_service.hold_placed(hold, **_audit(self.request))

    @extend_schema(request=None, responses=LegalHoldSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        hold = hold_service.release_hold(self.get_object(), **_audit(request))
        return Response(LegalHoldSerializer(hold).data)


class PurgeRunSerializer(StrictModelSerializer):
    class Meta:
        model = PurgeRun
        fields = (
            "id",
            "started",
            "finished",
            "dry_run",
            "worker",
            "counts",
            "held",
            "vacuumed",
            "files_deleted",
            "duration_ms",
            "batches_ms",
            "errors",
        )
        read_only_fields = fields


class PurgeRunViewSet(GovernanceView, viewsets.ReadOnlyModelViewSet):
    """Each purge run: counts per policy and action, duration, errors (no personal data).
    `GET next/`: what the next run would do."""

    serializer_class = PurgeRunSerializer
    queryset = PurgeRun.objects.all()

    @extend_schema(responses={200: dict})
    @action(detail=False, methods=["get"])
    def next(self, request):
        return Response(purge_service.preview_run())


class BinnedMessageSerializer(StrictModelSerializer):
    subject = serializers.SerializerMethodField()

    class Meta:
        model = BinnedMessage
        fields = (
            "id",
            "email_id",
            "thread_id",
            "subject",
            "policy",
            "reason",
            "binned_at",
            "vacuum_after",
        )
        read_only_fields = fields

    def get_subject(self, entry: BinnedMessage) -> str:
        return entry.payload["message"][0]["fields"].get("subject", "")


class BinViewSet(GovernanceView, viewsets.ReadOnlyModelViewSet):
    """Deleted messages, restorable until `vacuum_after`; `POST {id}/restore/` puts one back."""

    serializer_class = BinnedMessageSerializer
    queryset = BinnedMessage.objects.all()

    @extend_schema(
        request=None,
        responses={
            200: dict,
            409: error_response("It cannot be restored (captured again, vacuumed)."),
        },
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        entry = self.get_object()
        try:
            email_id = purge_service.restore(entry, **_audit(request))
        except purge_service.RestoreRejected as e:
            return Response({"detail": str(e)}, status=status.HTTP_409_CONFLICT)
        return Response({"email": email_id})


class DispositionReviewSerializer(StrictModelSerializer):
    class Meta:
        model = DispositionReview
        fields = (
            "id",
            "email",
            "email_ref",
            "policy",
            "reviewer",
            "status",
            "decided_by",
            "decided_at",
            "justification",
            "extended_to",
            "new_policy",
            "created",
        )
        read_only_fields = fields


class DecisionSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=("approve", "extend", "relabel"))
    justification = serializers.CharField(max_length=2000)
    extend_to = serializers.DateTimeField(required=False)
    new_policy = serializers.PrimaryKeyRelatedField(
        queryset=RetentionPolicy.objects.all(), required=False
    )


class DispositionReviewViewSet(GovernanceView, viewsets.ReadOnlyModelViewSet):
    """Messages due under a review policy: the named reviewer approves (disposal), extends
    or relabels them with a justification (`POST {id}/decide/`); every decision is audited."""

    serializer_class = DispositionReviewSerializer
    queryset = DispositionReview.objects.all()
    filterset_fields = ["status", "reviewer"]

    @extend_schema(
        request=DecisionSerializer,
        responses={
            200: DispositionReviewSerializer,
            409: error_response("Held, or already decided."),
        },
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        review = self.get_object()
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        try:
            review = reviews.decide_review(
                review,
                v["decision"],
                justification=v["justification"],
                extend_to=v.get("extend_to"),
                new_policy=v.get("new_policy"),
                **_audit(request),
            )
        except reviews.ReviewRejected as e:
            if "status" in e.errors:
                return Response({"detail": e.errors["status"][0]}, status=status.HTTP_409_CONFLICT)
            raise ValidationError(e.errors) from e
        except hold_service.MessageOnHold as e:
            return Response({"detail": str(e)}, status=status.HTTP_409_CONFLICT)
        return Response(DispositionReviewSerializer(review).data)


class ExpiryJobSerializer(StrictModelSerializer):
    class Meta:
        model = ExpiryJob
        fields = (
            "id",
            "reason",
            "status",
            "total",
            "done",
            "changed",
            "created",
            "finished",
            "error",
        )
        read_only_fields = fields


class ExpiryJobViewSet(GovernanceView, viewsets.ReadOnlyModelViewSet):
    """Bulk recomputations of expiry and their progress."""

    serializer_class = ExpiryJobSerializer
    queryset = ExpiryJob.objects.all()


class ExpirySerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField(allow_null=True)
    action = serializers.CharField()
    policy = serializers.IntegerField(allow_null=True)
    policy_name = serializers.CharField()
    rule = serializers.CharField()
    why = serializers.CharField()
    disposition = serializers.CharField()
    holds = serializers.ListField(child=serializers.CharField())


class EmailExpiryView(GovernanceView, APIView):
    """Why does this message expire then? Its expires_at, action, policy, conflict rule, and
    the holds that keep it."""

    @extend_schema(responses=ExpirySerializer)
    def get(self, request, pk: int):
        email = get_object_or_404(EmailMessage.objects.select_related("expiry_policy"), pk=pk)
        why = service.explain(email)
        why["holds"] = hold_service.held([email.pk]).get(email.pk, [])
        return Response(ExpirySerializer(why).data)


def register(router: DefaultRouter) -> None:
    router.register("retention-policies", RetentionPolicyViewSet, basename="retention-policy")
    router.register("legal-holds", LegalHoldViewSet, basename="legal-hold")
    router.register("purge-runs", PurgeRunViewSet, basename="purge-run")
    router.register("retention-bin", BinViewSet, basename="retention-bin")
    router.register("disposition-reviews", DispositionReviewViewSet, basename="disposition-review")
    router.register("expiry-jobs", ExpiryJobViewSet, basename="expiry-job")


urlpatterns = [path("emails/<dbid:pk>/expiry/", EmailExpiryView.as_view(), name="email-expiry")]
