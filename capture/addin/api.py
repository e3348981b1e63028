"""`/api/v1/addin/...`: what the add-in's panes need beyond the public API.

- `POST lookup/`: the open mail's participants with their contact match, suggested records
  with their "why", active categories, and where the mail is linked when already stored;
- `POST contacts/`: create the contact for an unmatched participant (organization by domain);
- `POST appointments/`: save an Outlook appointment (a meeting, with its recurrence);
- `POST capture-address/`: the user's personal BCC capture address (made when missing), for
  the compose pane's "Log";
- `POST sign-out/`: revoke the add-in token the request carries.

Mail itself is saved through `POST /api/v1/captures/` (capture/api/captures.py). The views
validate and call capture.addin's services, which audit every change.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.addin import appointments, lookup, records, signin
from capture.addresses import get_or_create_capture_address
from capture.api.captures import (
    LINK_MODELS,
    CaptureAcceptedSerializer,
    LinksSerializer,
    accept_capture,
)
from capture.categories import unusable_categories
from capture.intake import RawSpec, idempotency_key_for
from capture.models import AddinDeviceGrant, RawMessage
from core.api import IdField, StrictSerializer, error_response
from crm.addresses import InvalidAddress, normalize_address
from crm.auth import ScopePermission
from crm.models import ApiToken, Organization
from governance.audit import actor_from_request, client_address

READ, WRITE = ApiToken.Scope.CAPTURE_READ.value, ApiToken.Scope.CAPTURE_WRITE.value


class PersonSerializer(StrictSerializer):
    address = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class LookupSerializer(StrictSerializer):
    participants = serializers.ListField(
        child=PersonSerializer(), max_length=lookup.MAX_ADDRESSES, required=False
    )
    message_id = serializers.CharField(max_length=995, required=False, allow_blank=True)
    uid = serializers.CharField(max_length=255, required=False, allow_blank=True)
    subject = serializers.CharField(max_length=998, required=False, allow_blank=True)
    body = serializers.CharField(
        max_length=20000, required=False, allow_blank=True, help_text="The head of the body."
    )
    date = serializers.DateTimeField(required=False, allow_null=True)


class ContactCreateSerializer(StrictSerializer):
    address = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    organization = IdField(required=False, allow_null=True)
    create_organization = serializers.BooleanField(required=False, default=True)

    def validate_address(self, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidAddress as e:
            raise serializers.ValidationError(str(e) or "Not an e-mail address.") from None

    def validate_organization(self, value: int | None) -> Organization | None:
        if value is None:
            return None
        org = Organization.objects.filter(pk=value).first()
        if org is None:
            raise serializers.ValidationError(f"No such organization: {value}.")
        return org


class ContactCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    organization = serializers.DictField(allow_null=True)


def _category_names(value: list[str]) -> list[str]:
    bad = unusable_categories(value)
    if bad:
        raise serializers.ValidationError(
            f"Not an active category: {', '.join(bad)} (GET /api/v1/categories/ lists them)."
        )
    return list(dict.fromkeys(value))


class AppointmentSerializer(StrictSerializer):
    uid = serializers.CharField(max_length=255)
    subject = serializers.CharField(max_length=998, allow_blank=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    location = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    organizer = PersonSerializer(required=False, allow_null=True)
    attendees = serializers.ListField(child=PersonSerializer(), max_length=200, required=False)
    rrule = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    exdates = serializers.ListField(
        child=serializers.DateTimeField(), max_length=500, required=False
    )
    modified = serializers.DateTimeField(required=False, allow_null=True)
    body = serializers.CharField(max_length=20000, required=False, allow_blank=True, default="")
    links = LinksSerializer(required=False)
    categories = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )

    def validate_rrule(self, value: str) -> str:
        if value.strip():
            try:
                appointments.parse_rrule(value)
            except appointments.InvalidRecurrence as e:
                raise serializers.ValidationError(str(e)) from None
        return value.strip()

    def validate_categories(self, value: list[str]) -> list[str]:
        return _category_names(value)

    def _person(self, data: dict) -> appointments.Person:
        try:
            return appointments.Person(normalize_address(data["address"]), data.get("name", ""))
        except InvalidAddress:
            raise serializers.ValidationError(
                {"address": [f"Not an e-mail address: {data['address'][:100]}"]}
            ) from None

    def validate(self, attrs: dict) -> dict:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["Ends before it starts."]})
        if attrs.get("organizer"):
            attrs["organizer"] = self._person(attrs["organizer"])
        attrs["attendees"] = [self._person(p) for p in attrs.get("attendees", [])]
        return attrs


class CaptureAddressAnswer(serializers.Serializer):
    address = serializers.EmailField()


def _is_addin_token(request) -> bool:
    token = getattr(request, "auth", None)
    return isinstance(token, ApiToken) and AddinDeviceGrant.objects.filter(token=token).exists()


class AddinView(APIView):
    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = READ  # the lookup is a POST that only reads


class LookupView(AddinView):
    """The read pane's picture of one mail or appointment."""

    @extend_schema(request=LookupSerializer, responses={200: dict})
    def post(self, request):
        s = LookupSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        people = v.get("participants", [])
        addresses, _bad = lookup.clean_addresses([p["address"] for p in people])
        names = {}
        for p in people:
            try:
                names.setdefault(normalize_address(p["address"]), p.get("name", ""))
            except InvalidAddress:
                continue
        query = lookup.LookupQuery(
            addresses=addresses,
            names=names,
            message_id=v.get("message_id", ""),
            uid=v.get("uid", ""),
            subject=v.get("subject", ""),
            body=v.get("body", ""),
            date=v.get("date"),
        )
        answer = lookup.lookup(query, request.user)
        answer["skipped"] = _bad
        return Response(answer)


class ContactCreateView(AddinView):
    """Create the contact for a participant the CRM does not know (organization by domain)."""

    read_scope = ApiToken.Scope.CRM_READ.value
    write_scope = ApiToken.Scope.CRM_WRITE.value

    @extend_schema(request=ContactCreateSerializer, responses={201: ContactCreatedSerializer})
    def post(self, request):
        s = ContactCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        contact = records.create_contact(
            address=v["address"],
            name=v.get("name", ""),
            user=request.user,
            organization=v.get("organization"),
            create_organization=v.get("create_organization", True),
            actor=actor_from_request(request),
            client=client_address(request),
        )
        org = contact.organization
        body = {
            "id": contact.pk,
            "name": str(contact),
            "organization": {"id": org.pk, "name": org.name} if org else None,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class AppointmentView(AddinView):
    """Save an Outlook appointment as a meeting (recurrence included); saving it again after a
    change updates the meeting, saving it unchanged adds the chosen links."""

    write_scope = WRITE

    @extend_schema(
        request=AppointmentSerializer,
        responses={
            202: CaptureAcceptedSerializer,
            503: error_response("The message store is unavailable: retry after `Retry-After`."),
        },
    )
    def post(self, request):
        s = AppointmentSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        appt = appointments.Appointment(
            uid=v["uid"],
            subject=v["subject"],
            start=v["start"],
            end=v["end"],
            location=v.get("location", ""),
            organizer=v.get("organizer"),
            attendees=v["attendees"],
            rrule=v.get("rrule", ""),
            exdates=v.get("exdates", []),
            modified=v.get("modified"),
            body=v.get("body", ""),
        )
        user = request.user
        data = appointments.appointment_mime(
            appt, sender=appointments.Person(user.email or f"user-{user.pk}@invalid", str(user))
        )
        options = {
            "links": {k: v["links"].get(k, []) for k in LINK_MODELS} if "links" in v else {},
            "categories": list(v.get("categories", [])),
        }
        spec = RawSpec(
            data=data,
            channel=RawMessage.Channel.ADDIN,
            user_id=user.pk,
            source="outlook-addin:appointment",
            idempotency_key=idempotency_key_for(user.pk, data, options=options),
            options=options,
        )
        return accept_capture(request, spec, message_id=appointments.message_id_for(appt))


class CaptureAddressView(AddinView):
    """The user's personal capture address (created, and audited, when missing): the compose
    pane adds it as a BCC when "Log" is on."""

    write_scope = WRITE

    @extend_schema(request=None, responses={200: CaptureAddressAnswer})
    def post(self, request):
        addr = get_or_create_capture_address(
            request.user,
            actor=actor_from_request(request),
            channel="api",
            address=client_address(request),
        )
        return Response({"address": addr.address})


class SignOutView(AddinView):
    """Revoke the add-in token this request carries (only tokens the add-in's sign-in issued;
    other tokens are revoked in admin)."""

    write_scope = READ

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if not _is_addin_token(request):
            raise PermissionDenied("Only a token issued to the add-in signs out here.")
        signin.sign_out(
            request.auth, actor=actor_from_request(request), address=client_address(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
