"""The portal's language (docs/admin.md "Languages").

LocaleMiddleware picks the language from the switcher's cookie or the browser's
Accept-Language; ProfileLanguageMiddleware (after authentication) then activates the signed-in
user's profile language (crm.User.language) when they chose one. The header's language
switcher posts to :func:`set_language`, Django's own view, which also saves the choice to the
profile of a signed-in user (audited).
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from crm.services import LanguageRejected, set_user_language
from governance.audit import client_address


def profile_language(user) -> str:
    """The user's chosen language, or "" when they follow the browser."""
    if not getattr(user, "is_authenticated", False):
        return ""
    language = getattr(user, "language", "") or ""
    return language if language in dict(settings.LANGUAGES) else ""


class ProfileLanguageMiddleware:
    """A signed-in user's profile language beats the cookie and the browser."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = profile_language(getattr(request, "user", None))
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


@require_POST
def set_language(request):
    """Django's set_language (cookie, redirect to `next`), and the profile of a signed-in user."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and language in dict(settings.LANGUAGES):
        try:
            set_user_language(user, language, channel="web", client=client_address(request))
        except LanguageRejected:  # pragma: no cover - checked above
            pass
    return response


def translate_model_names() -> None:
    """Give our apps and models their translated names (config/model_names.py) without
    touching their Meta, so no migration changes. Called from the portal app's ready()."""
    from django.apps import apps
    from django.utils.translation import gettext_lazy

    from config.model_names import APP_NAMES, MODEL_NAMES

    for label, name in APP_NAMES.items():
        config = apps.get_app_config(label)
        if str(config.verbose_name) == name:
            config.verbose_name = gettext_lazy(name)
    for label, (singular, plural) in MODEL_NAMES.items():
        try:
            meta = apps.get_model(label)._meta
        except LookupError:
            continue
        # only while the English is what this list knows (a Meta changed since keeps its own)
        if str(meta.verbose_name) == singular:
            meta.verbose_name = gettext_lazy(singular)
        if str(meta.verbose_name_plural) == plural:
            meta.verbose_name_plural = gettext_lazy(plural)
