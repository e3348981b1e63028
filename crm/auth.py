"""Bearer-token authentication with scopes, for integrations and the mail-client add-in."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone, translation
from rest_framework import authentication, exceptions, permissions, throttling

from crm.models import ApiToken


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer mw_...` (or `Token mw_...`). Sets request.auth to the ApiToken."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        key = header[1].decode(errors="replace")
        token = (
            ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
        )
        if token is None or not token.is_active or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        now = timezone.now()
        if token.last_used is None or (now - token.last_used).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        # the token user's profile language, as config.i18n does for a session (else the
        # request's Accept-Language, activated by LocaleMiddleware, stays)
        if token.user.language in dict(settings.LANGUAGES):
            translation.activate(token.user.language)
            request.LANGUAGE_CODE = token.user.language
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def request_scopes(request) -> set[str] | None:
    """Scopes of the request's token; None for a session login (scopes don't apply)."""
    if isinstance(getattr(request, "auth", None), ApiToken):
        return set(request.auth.scopes)
    return None


class ScopePermission(permissions.BasePermission):
    """Token requests need the view's `read_scope` for safe methods, `write_scope` otherwise.

    Session requests (the browsable API, staff) are allowed for staff users only.
    """

    message = "Your token lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        scopes = request_scopes(request)
        needed = (
            getattr(view, "read_scope", None)
            if request.method in permissions.SAFE_METHODS
            else getattr(view, "write_scope", None)
        )
        if scopes is None:
            return bool(request.user.is_staff)
        if needed is None:
            return False
        self.message = f"Your token lacks the scope '{needed}'."
        return needed in scopes


class TokenRateThrottle(throttling.SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(getattr(request, "auth", None), ApiToken):
            ident = f"tok{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
