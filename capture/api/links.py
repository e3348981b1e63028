"""Linking doors: `/api/v1/link-rules/`, `/api/v1/review-items/`, and
`/api/v1/threads/{id}/links/` (GET the links with their "why", POST link, DELETE unlink).

Views validate and call capture.links (docs/linking.md); every change is audited there.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from capture import links as service
from capture.models import LinkRule, RawMessage, ReviewItem, Thread, ThreadLink, ThreadUnlink
from capture.visibility import sees_everything, visible_threads
from core.api import IdField, StrictModelSerializer, StrictSerializer
from crm.auth import ScopePermission
from crm.models import ApiToken, Item
from governance.audit import actor_from_request, client_address

CHANNEL = "api"
READ, WRITE = ApiToken.Scope.CAPTURE_READ.value, ApiToken.Scope.CAPTURE_WRITE.value


def audit_kwargs(request) -> dict:
    return {
        "actor": actor_from_request(request),
        "channel": CHANNEL,
        "address": client_address(request),
    }


class ThreadLinkWhySerializer(serializers.ModelSerializer):
    why = serializers.SerializerMethodField()

    class Meta:
        model = ThreadLink
        fields = (
            "id", "source", "contact", "organization", "item", "created_by", "created",
            "rule", "strategy", "matched_address", "reference", "detail", "why",
        )  # fmt: skip

    def get_why(self, obj: ThreadLink) -> str:
        return service.describe_link(obj)


# --- link rules -----------------------------------------------------------------------------


class LinkRuleSerializer(StrictModelSerializer):
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=RawMessage.Channel.choices),
        required=False,
        max_length=20,
    )
    recent_count = serializers.IntegerField(min_value=1, max_value=100, required=False)

    class Meta:
        model = LinkRule
        fields = (
            "id", "position", "enabled", "description", "kind", "strategy", "recent_count",
            "pattern", "direction", "channels", "skip_auto_generated", "created", "updated",
        )  # fmt: skip
        read_only_fields = ("created", "updated")


class ItemBackfillSerializer(StrictSerializer):
    item = IdField()


class LinkRuleViewSet(viewsets.ModelViewSet):
    """The ordered link rules (admins change them; every change audited)."""

    serializer_class = LinkRuleSerializer
    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = ApiToken.Scope.GOVERNANCE_ADMIN.value
    queryset = LinkRule.objects.order_by("position", "id")
    filterset_fields = ["enabled", "kind", "strategy"]

    def _check_admin(self) -> None:
        if not self.request.user.is_admin_role:
            raise PermissionDenied("Only admins change link rules.")

    def perform_create(self, serializer) -> None:
        self._check_admin()
        serializer.instance = service.save_link_rule(
            LinkRule(**serializer.validated_data), **audit_kwargs(self.request)
        )

    def perform_update(self, serializer) -> None:
        self._check_admin()
        rule = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(rule, name, value)
        service.save_link_rule(
            rule, changed=list(serializer.validated_data), **audit_kwargs(self.request)
        )

    def perform_destroy(self, instance: LinkRule) -> None:
        self._check_admin()
        service.delete_link_rule(instance, **audit_kwargs(self.request))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["get", "post"])
    def backfill(self, request, pk=None):
        """GET: the threads the rule would link now, and why. POST: link them (audited)."""
        rule = self.get_object()
        if request.method == "GET":
            preview = service.preview_backfill(rule=rule)
            return Response({"threads": preview.threads, "links": preview.rows()})
        self._check_admin()
        made = service.run_backfill(rule=rule, user=request.user, **audit_kwargs(request))
        return Response({"links": made})

    @extend_schema(
        methods=["GET"],
        request=None,
        parameters=[OpenApiParameter("item", int, required=True, description="The item's id.")],
        responses={200: dict},
    )
    @extend_schema(methods=["POST"], request=ItemBackfillSerializer, responses={200: dict})
    @action(detail=False, methods=["get", "post"], url_path="item-backfill")
    def item_backfill(self, request):
        """GET ?item=5: which threads the enabled rules would link to that item, and why.
        POST {"item": 5}: link them (admins; audited)."""
        data = request.query_params if request.method == "GET" else request.data
        s = ItemBackfillSerializer(
            data={"item": data.get("item") if hasattr(data, "get") else None}
        )
        s.is_valid(raise_exception=True)
        item = Item.objects.filter(pk=s.validated_data["item"]).first()
        if item is None:
            raise serializers.ValidationError({"item": ["No such item."]})
        if request.method == "GET":
            preview = service.preview_backfill(item=item)
            return Response({"threads": preview.threads, "links": preview.rows()})
        self._check_admin()
        made = service.run_backfill(item=item, user=request.user, **audit_kwargs(request))
        return Response({"links": made})


# --- review items ---------------------------------------------------------------------------


class ReviewItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReviewItem
        fields = (
            "id", "kind", "status", "email", "thread", "participant", "candidates", "detail",
            "resolved_by", "resolved_at", "created",
        )  # fmt: skip
        read_only_fields = fields


class ResolveSerializer(StrictSerializer):
    ids = serializers.ListField(child=IdField(), required=False, max_length=500)
    contact = IdField(required=False)
    organization = IdField(required=False)
    item = IdField(required=False)


class ReviewItemViewSet(viewsets.ReadOnlyModelViewSet):
    """The review queue. `resolve` links the thread (to the chosen record, or else the top
    candidate) and closes the thread's reviews it settles; `dismiss` closes without linking.
    Both act on one item (`/{id}/resolve/`) or many (`/resolve/` with `ids`)."""

    serializer_class = ReviewItemSerializer
    queryset = ReviewItem.objects.none()  # the real one is per user (get_queryset)
    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = WRITE
    filterset_fields = ["status", "kind", "thread"]

    def get_queryset(self):
        qs = ReviewItem.objects.order_by("-id")
        if getattr(self, "swagger_fake_view", False):
            return qs.none()
        user = self.request.user
        if sees_everything(user):
            return qs
        return qs.filter(thread__in=visible_threads(user).values("pk"))

    def _reviews(self, request, pk=None) -> tuple[list[ReviewItem], dict]:
        data = ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        ids = [int(pk)] if pk is not None else values.pop("ids", [])
        if not ids:
            raise serializers.ValidationError({"ids": ["Name the review items."]})
        reviews = list(self.get_queryset().filter(pk__in=ids).select_related("thread"))
        if pk is not None and not reviews:
            raise NotFound()
        if len(reviews) != len(set(ids)):
            raise serializers.ValidationError({"ids": ["Unknown review items."]})
        for review in reviews:
            if review.thread and not service.can_manage_links(request.user, review.thread):
                raise PermissionDenied("Only the thread's owner or an admin may resolve this.")
        return reviews, values

    def _resolve(self, request, pk=None):
        reviews, values = self._reviews(request, pk)
        target = service.Target.of(values) if values else None
        done = service.resolve_review_items(
            reviews, target, user=request.user, **audit_kwargs(request)
        )
        return Response({"resolved": done})

    def _dismiss(self, request, pk=None):
        reviews, _ = self._reviews(request, pk)
        done = service.dismiss_review_items(reviews, user=request.user, **audit_kwargs(request))
        return Response({"dismissed": done})

    @extend_schema(request=ResolveSerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._resolve(request, pk)

    @extend_schema(
        request=ResolveSerializer,
        responses={200: dict},
        operation_id="v1_review_items_resolve_many",
    )
    @action(detail=False, methods=["post"], url_path="resolve")
    def resolve_many(self, request):
        return self._resolve(request)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return self._dismiss(request, pk)

    @extend_schema(
        request=ResolveSerializer,
        responses={200: dict},
        operation_id="v1_review_items_dismiss_many",
    )
    @action(detail=False, methods=["post"], url_path="dismiss")
    def dismiss_many(self, request):
        return self._dismiss(request)


# --- a thread's links -----------------------------------------------------------------------


class LinkTargetSerializer(StrictSerializer):
    contact = IdField(required=False)
    organization = IdField(required=False)
    item = IdField(required=False)


class ThreadLinksView(APIView):
    """GET a thread's links with their "why"; POST `{"item": 5}` links it; DELETE with
    `?item=5` (or the same body) unlinks it for good. Owner or admin only."""

    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = WRITE

    def _thread(self, request, pk: int) -> Thread:
        if request.method == "GET":
            return get_object_or_404(visible_threads(request.user), pk=pk)
        thread = get_object_or_404(Thread, pk=pk)
        if not service.can_manage_links(request.user, thread):
            raise PermissionDenied("Only the thread's owner or an admin may change its links.")
        return thread

    def _target(self, data) -> service.Target:
        s = LinkTargetSerializer(data=data)
        s.is_valid(raise_exception=True)
        return service.Target.of(s.validated_data)

    @extend_schema(responses=ThreadLinkWhySerializer(many=True))
    def get(self, request, pk: int):
        thread = self._thread(request, pk)
        qs = thread.links.select_related("rule", "created_by").order_by("id")
        return Response(ThreadLinkWhySerializer(qs, many=True).data)

    @extend_schema(request=LinkTargetSerializer, responses=ThreadLinkWhySerializer)
    def post(self, request, pk: int):
        thread = self._thread(request, pk)
        link = service.link_thread(
            thread, self._target(request.data), user=request.user, **audit_kwargs(request)
        )
        return Response(ThreadLinkWhySerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=LinkTargetSerializer, responses={204: None})
    def delete(self, request, pk: int):
        thread = self._thread(request, pk)
        data = request.data if request.data else request.query_params.dict()
        service.unlink_thread(
            thread, self._target(data), user=request.user, **audit_kwargs(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreadUnlinkSerializer(serializers.ModelSerializer):
    class Meta:
        model = ThreadUnlink
        fields = ("id", "contact", "organization", "item", "removed_by", "created")
        read_only_fields = fields


class ThreadUnlinksView(APIView):
    """GET the links a person removed from a thread (sticky: no rule makes them again; a
    manual link of the same record lifts one)."""

    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = None

    @extend_schema(responses=ThreadUnlinkSerializer(many=True))
    def get(self, request, pk: int):
        thread = get_object_or_404(visible_threads(request.user), pk=pk)
        rows = ThreadUnlink.objects.filter(thread=thread).order_by("id")
        return Response(ThreadUnlinkSerializer(rows, many=True).data)


def register(router: DefaultRouter) -> None:
    router.register("link-rules", LinkRuleViewSet, basename="link-rule")
    router.register("review-items", ReviewItemViewSet, basename="review-item")


urlpatterns = [
    path("threads/<dbid:pk>/links/", ThreadLinksView.as_view(), name="thread-links"),
    path("threads/<dbid:pk>/unlinks/", ThreadUnlinksView.as_view(), name="thread-unlinks"),
]
