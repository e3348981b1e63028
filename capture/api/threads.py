"""`POST /api/v1/threads/{id}/private/` marks a thread private (owner or admin);
`POST /api/v1/threads/{id}/share/` shares it again (owner). Audited in capture/privacy.py."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.models import Thread
from capture.privacy import set_thread_private
from capture.visibility import visible_threads
from crm.auth import ScopePermission
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address

READ, WRITE = ApiToken.Scope.CAPTURE_READ.value, ApiToken.Scope.CAPTURE_WRITE.value


class ThreadPrivacySerializer(serializers.ModelSerializer):
    class Meta:
        model = Thread
        fields = ("id", "private", "owner")
        read_only_fields = fields


class _ThreadPrivacyView(APIView):
    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = WRITE
    private = True

    def post(self, request, pk: int):
        thread = get_object_or_404(visible_threads(request.user), pk=pk)
        try:
            thread = set_thread_private(
                thread,
                self.private,
                user=request.user,
                actor=actor_from_request(request),
                channel="api",
                address=client_address(request),
            )
        except DjangoPermissionDenied as e:
            raise PermissionDenied(str(e)) from e
        return Response(ThreadPrivacySerializer(thread).data)


class ThreadPrivateView(_ThreadPrivacyView):
    """Mark the thread private: visible to its owner alone; new mail into it is private."""

    @extend_schema(summary="Mark a thread private", request=None, responses=ThreadPrivacySerializer)
    def post(self, request, pk: int):
        return super().post(request, pk)


class ThreadShareView(_ThreadPrivacyView):
    """Share a private thread again (its owner only)."""

    private = False

    @extend_schema(
        summary="Share a private thread again", request=None, responses=ThreadPrivacySerializer
    )
    def post(self, request, pk: int):
        return super().post(request, pk)


def register(router) -> None:
    return None


urlpatterns = [
    path("threads/<dbid:pk>/private/", ThreadPrivateView.as_view(), name="thread-private"),
    path("threads/<dbid:pk>/share/", ThreadShareView.as_view(), name="thread-share"),
]
