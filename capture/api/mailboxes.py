"""`/api/v1/mailboxes/`: a user's IMAP connections (admins see everyone's).

The password or token is write-only: it is encrypted on the way in and never returned. Sync
status and folder checkpoints are read-only. Actions: `sync` (queue a run now), `resume`
(after a pause, e.g. repeated auth failures), `pause`, `reconcile` (compare the server's UIDs
with what was stored; docs/imap.md), `test-connection` (log in and list folders, no sync). Views only validate and call capture.imap.mailboxes and
capture.imap.reconcile.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from capture.imap import mailboxes as service
from capture.imap.probe import check_connection
from capture.imap.reconcile import reconcile_mailbox
from capture.models import MailboxConnection, MailboxFolder
from core.api import StrictSerializer, error_response
from crm.auth import ScopePermission
from crm.models import User
from governance.audit import actor_from_request, client_address

CHANNEL = "api"


def sees_all(user) -> bool:
    return bool(getattr(user, "is_admin_role", False))


class FolderStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = MailboxFolder
        fields = [
            "name", "uidvalidity", "last_uid", "messages_synced", "skipped", "skipped_log",
            "last_synced_at",
        ]  # fmt: skip
        read_only_fields = fields


class MailboxSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, max_length=8192,
        style={"input_type": "password"},
        help_text="Password, or the OAuth2 access token when auth is xoauth2. Never returned.",
    )  # fmt: skip
    has_secret = serializers.SerializerMethodField()
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="Admins only; default: you."
    )
    folders = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=100
    )
    excluded_folders = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=100
    )
    folder_states = FolderStateSerializer(many=True, read_only=True)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    sync_window_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    interval_minutes = serializers.IntegerField(min_value=1, max_value=10080, required=False)
    org_excluded_folders = serializers.SerializerMethodField()

    class Meta:
        model = MailboxConnection
        fields = [
            "id", "owner", "name", "host", "port", "security", "username", "auth", "secret",
            "has_secret", "folders", "excluded_folders", "org_excluded_folders",
            "sync_window_days", "interval_minutes", "enabled", "visibility",
            "last_sync_at", "next_sync_at", "last_error", "last_error_at",
            "consecutive_auth_failures", "paused_reason", "folder_states", "last_reconciled_at",
            "reconcile_gap", "created", "updated",
        ]  # fmt: skip
        read_only_fields = [
            "last_sync_at", "next_sync_at", "last_error", "last_error_at",
            "consecutive_auth_failures", "paused_reason", "last_reconciled_at", "reconcile_gap",
            "created", "updated",
        ]  # fmt: skip

    def get_has_secret(self, obj: MailboxConnection) -> bool:
        return bool(obj.secret_encrypted)

    def get_org_excluded_folders(self, obj: MailboxConnection) -> list[str]:
        return list(settings.MAILWARDEN_IMAP_EXCLUDED_FOLDERS)

    def validate_owner(self, owner: User) -> User:
        request = self.context["request"]
        if owner != request.user and not sees_all(request.user):
            raise serializers.ValidationError("Only admins can set up a mailbox for someone else.")
        return owner

    def validate(self, attrs):
        if self.instance is None and not attrs.get("secret"):
            raise serializers.ValidationError({"secret": "A password or access token is required."})
        return attrs


class ReconcileRequestSerializer(StrictSerializer):
    fetch_missing = serializers.BooleanField(
        default=False,
        help_text="Fetch the UIDs neither stored nor accounted for, then count again.",
    )


# A reconciliation that could not run: the mailbox is held by a sync, off, or unreachable.
_RECONCILE_REFUSED = {
    "busy": status.HTTP_409_CONFLICT,
    "paused": status.HTTP_409_CONFLICT,
    "disabled": status.HTTP_409_CONFLICT,
    "auth_failed": status.HTTP_502_BAD_GATEWAY,
    "error": status.HTTP_502_BAD_GATEWAY,
}


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class MailboxViewSet(viewsets.ModelViewSet):
    serializer_class = MailboxSerializer
    queryset = MailboxConnection.objects.none()  # the real one is per user (get_queryset)
    permission_classes = [ScopePermission]
    read_scope = "capture:read"
    write_scope = "capture:write"
    filterset_fields = ["enabled", "owner", "security", "auth"]
    search_fields = ["name", "host", "username"]

    def get_queryset(self):
        qs = MailboxConnection.objects.select_related("owner").prefetch_related("folder_states")
        user = self.request.user
        return qs if sees_all(user) else qs.filter(owner=user)

    def _audit_kwargs(self) -> dict:
        return {
            "actor": actor_from_request(self.request),
            "channel": CHANNEL,
            "address": client_address(self.request),
        }

    def perform_create(self, serializer: MailboxSerializer) -> None:
        data = dict(serializer.validated_data)
        secret = data.pop("secret")
        data.setdefault("owner", self.request.user)
        serializer.instance = service.save_mailbox(
            MailboxConnection(**data), secret=secret, **self._audit_kwargs()
        )

    def perform_update(self, serializer: MailboxSerializer) -> None:
        data = dict(serializer.validated_data)
        secret = data.pop("secret", None)
        mailbox = serializer.instance
        for name, value in data.items():
            setattr(mailbox, name, value)
        service.save_mailbox(
            mailbox, secret=secret or None, changed=sorted(data), **self._audit_kwargs()
        )

    def perform_destroy(self, instance: MailboxConnection) -> None:
        service.delete_mailbox(instance, **self._audit_kwargs())

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(description="A sync is queued."),
            409: error_response("The mailbox is paused or disabled (code `not_syncable`)."),
        },
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Queue a sync now (409 when the mailbox is paused or disabled)."""
        mailbox = self.get_object()
        if not service.request_sync(mailbox, actor=actor_from_request(request)):
            return Response(
                {
                    "detail": mailbox.paused_reason or "The mailbox is disabled.",
                    "code": "not_syncable",
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response({"queued": True, "mailbox": mailbox.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Clear a pause (e.g. after the password was fixed) and make the mailbox due now."""
        mailbox = self.get_object()
        service.resume_mailbox(mailbox, actor=actor_from_request(request))
        return Response(self.get_serializer(mailbox).data)

    @extend_schema(request=PauseSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop syncing until resumed."""
        mailbox = self.get_object()
        body = PauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data.get("reason") or "Paused by its owner."
        service.pause_mailbox(mailbox, reason=reason, actor=actor_from_request(request))
        return Response(self.get_serializer(mailbox).data)

    @extend_schema(
        request=ReconcileRequestSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            409: error_response("A sync holds the mailbox, or it is paused or disabled."),
            502: error_response("The IMAP server could not be reached or refused the login."),
        },
    )
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk=None):
        """Compare the server's UIDs with what was stored, skipped or rejected; the report
        (409 when busy, paused or disabled; 502 when the server cannot be reached)."""
        mailbox = self.get_object()
        body = ReconcileRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = reconcile_mailbox(
            mailbox.pk, fetch_missing=body.validated_data["fetch_missing"], **self._audit_kwargs()
        )
        body = report.as_dict()
        refused = _RECONCILE_REFUSED.get(report.status)
        if refused is None:
            return Response(body)
        # The error body every endpoint answers with, plus the report's fields.
        detail = report.error or f"The mailbox could not be reconciled ({report.status})."
        return Response({"detail": detail, "code": report.status, **body}, status=refused)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The result: `ok`, `status` (ok, auth_failed, unreachable), "
                "`error`, `folders`, `would_sync`, `missing`.",
            )
        },
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        """Log in and list the folders (no sync, no status change; audited). A refused login
        or an unreachable server is a result (`ok: false`), not an error of this call."""
        mailbox = self.get_object()
        check = check_connection(mailbox, **self._audit_kwargs())
        return Response(
            {
                "ok": check.ok,
                "status": check.status,
                "error": check.error,
                "folders": check.folders,
                "would_sync": check.would_sync,
                "missing": check.missing,
            }
        )


def register(router: DefaultRouter) -> None:
    """Add this module's viewsets to the capture router."""
    router.register("mailboxes", MailboxViewSet, basename="mailbox")
