"""The ESP inbound webhook endpoints: anymail's views, closed unless verification is set up.

Each provider is anymail's own inbound view with three changes:
- a provider whose verification secret is not configured refuses every POST (403) instead of
  anymail's default of accepting unauthenticated posts with a warning;
- a failed signature or basic-auth check answers 403 (anymail raises a SuspiciousOperation,
  which Django turns into 400) and nothing is stored;
- a store outage answers 503 with Retry-After, so the ESP retries later.
Amazon SES additionally verifies the SNS message signature (capture/webhooks/sns.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from anymail.utils import get_anymail_setting
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.brevo import BrevoInboundWebhookView
from anymail.webhooks.mailersend import MailerSendInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.mailjet import MailjetInboundWebhookView
from anymail.webhooks.mailtrap import MailtrapInboundWebhookView
from anymail.webhooks.mandrill import MandrillCombinedWebhookView
from anymail.webhooks.postal import PostalInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.resend import ResendInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from anymail.webhooks.sparkpost import SparkPostInboundWebhookView
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from capture.errors import StoreUnavailable
from capture.webhooks.sns import SnsCertUnavailable, SnsSignatureInvalid, verify_sns_message

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60
# (setting name, anymail esp_name or None for the shared WEBHOOK_SECRET)
Setting = tuple[str, str | None]
BASIC_AUTH: Setting = ("webhook_secret", None)


class VerifiedInboundMixin:
    """403 on failed verification, 503 when the store is down (see the module docstring)."""

    provider = ""

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)  # type: ignore[misc]
        except (AnymailWebhookValidationFailure, SnsSignatureInvalid) as e:
            log.info("inbound webhook %s refused: %s", self.provider, e.__class__.__name__)
            return HttpResponse("webhook verification failed", status=403)
        except (AnymailAPIError, json.JSONDecodeError) as e:
            # Verified but unreadable: retrying the same payload cannot help.
            log.info(
                "inbound webhook %s: malformed payload (%s)", self.provider, e.__class__.__name__
            )
            return HttpResponse("malformed payload", status=400)
        except (StoreUnavailable, DatabaseError, SnsCertUnavailable) as e:
            log.warning("inbound webhook %s: try again later (%s)", self.provider, e)
            response = HttpResponse("temporarily unavailable", status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response


class AmazonSESVerifiedInboundView(AmazonSESInboundWebhookView):
    """anymail's SES inbound view plus SNS signature verification."""

    def validate_request(self, request):
        # anymail calls every validate_request in the class chain (basic auth, SNS headers).
        verify_sns_message(self._parse_sns_message(request))


@dataclass(frozen=True)
class Provider:
    """One ESP: its anymail view, the settings that turn verification on, what else it needs."""

    slug: str
    view_class: type
    verifiers: tuple[Setting, ...]  # at least one must be set
    needs: tuple[Setting, ...] = field(default=())  # all must be set

    def setting(self, setting: Setting) -> str:
        name, esp = setting
        value = get_anymail_setting(name, esp_name=esp, default="", allow_bare=esp is not None)
        return ",".join(value) if isinstance(value, list | tuple) else str(value or "")

    def missing(self) -> str:
        """Empty when ready; else which setting is missing (names only, never values)."""
        if not any(self.setting(s) for s in self.verifiers):
            return "verification: " + " or ".join(_setting_name(s) for s in self.verifiers)
        absent = [_setting_name(s) for s in self.needs if not self.setting(s)]
        return ", ".join(absent)


def _setting_name(setting: Setting) -> str:
    name, esp = setting
    prefix = f"{esp.upper().replace(' ', '_')}_" if esp else ""
    return f"ANYMAIL {prefix}{name.upper()}"


PROVIDERS: tuple[Provider, ...] = (
    Provider("mailgun", MailgunInboundWebhookView, (("webhook_signing_key", "Mailgun"),)),
    Provider("sendgrid", SendGridInboundWebhookView, (BASIC_AUTH,)),
    Provider("postmark", PostmarkInboundWebhookView, (BASIC_AUTH,)),
    Provider("amazon_ses", AmazonSESVerifiedInboundView, (BASIC_AUTH,)),
    Provider("mailjet", MailjetInboundWebhookView, (BASIC_AUTH,)),
    Provider("sparkpost", SparkPostInboundWebhookView, (BASIC_AUTH,)),
    Provider("brevo", BrevoInboundWebhookView, (BASIC_AUTH,), (("api_key", "Brevo"),)),
    Provider("mailersend", MailerSendInboundWebhookView, (("inbound_secret", "MailerSend"),)),
    Provider(
        "mailtrap",
        MailtrapInboundWebhookView,
        (("inbound_secret", "Mailtrap"), BASIC_AUTH),
        (("api_token", "Mailtrap"),),
    ),
    Provider("postal", PostalInboundWebhookView, (("webhook_key", "Postal"),)),
    Provider("resend", ResendInboundWebhookView, (BASIC_AUTH,), (("api_key", "Resend"),)),
    Provider("mandrill", MandrillCombinedWebhookView, (("webhook_key", "Mandrill"),)),
)


def max_body_bytes() -> int:
    # base64 (SES, Postmark attachments) grows a message by 4/3; leave room for the envelope.
    return settings.MAILWARDEN_MAX_MESSAGE_BYTES * 4 // 3 + 1024 * 1024


def inbound_view(provider: Provider) -> Callable[[HttpRequest], HttpResponse]:
    """The endpoint for one provider: refuse unless configured, then anymail's view."""
    view_class = type(
        f"Capture{provider.view_class.__name__}",
        (VerifiedInboundMixin, provider.view_class),
        {"provider": provider.slug},
    )
    view = view_class.as_view()

    @csrf_exempt
    def endpoint(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        missing = provider.missing()
        if missing:
            log.warning("inbound webhook %s refused: not configured (%s)", provider.slug, missing)
            return HttpResponse("this inbound webhook is not configured", status=403)
        if int(request.META.get("CONTENT_LENGTH") or 0) > max_body_bytes():
            return HttpResponse("message too large", status=413)
        if request.method == "POST":
            # Read the body before anymail parses the form, so the raw MIME field can be
            # taken byte for byte (capture/webhooks/inbound.py).
            _ = request.body
        return view(request, *args, **kwargs)

    endpoint.provider = provider  # type: ignore[attr-defined]
    return endpoint
