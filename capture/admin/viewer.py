"""The safe mail viewer in the admin (docs/governance.md, "The safe mail viewer").

URLs (all under the message's admin page, staff only, each answer decided by
capture.visibility for the signed-in user):

- `/admin/capture/emailmessage/<id>/view/` the viewer page: the thread in order with its
  captures (channel, user, time), its links and why each exists, the message's metadata, its
  attachments with download links, and its body in a sandboxed iframe; whatever the viewer
  may not see is shown as "(hidden: reason)".
- `.../<id>/body/` the body alone, for the iframe: sanitised HTML (or the plain text,
  `?format=text`, and whenever there is no HTML), served with a Content-Security-Policy that
  lets nothing run and nothing load; remote images only with `?images=1`, then through
- `.../<id>/image/?src=<signed>` the image proxy (capture/viewer_proxy.py). The body frame
  is sandboxed into an opaque origin, so the browser sends no session cookie (SameSite) with
  its image requests: the signed token names the user it was shown to, and the proxy decides
  access for that user (or for the signed-in one, who must be the same).
- `.../<id>/attachments/<attachment id>/` an attachment download.

Audit: the body request writes one `message.viewed` event, a download one
`attachment.downloaded` (no body text, no address in either); the viewer page itself shows
no body and writes none, so one view of a message is one event.
"""

from __future__ import annotations

from django.contrib.admin import ModelAdmin
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin

from capture import storage
from capture.links import describe_link
from capture.models import Attachment, Capture, EmailMessage, Participant, ThreadLink
from capture.viewer import body_csp, has_remote_images, image_token, sanitise_html, sign_image
from capture.viewer_proxy import ProxyRefused, fetch_image
from capture.visibility import Viewer, access_for, access_map, visible_emails
from governance.audit import client_address, record_event

FRAME_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><base target="_blank">'
    "<style>body{{font:14px/1.45 sans-serif;margin:8px;color:#222;word-wrap:break-word}}"
    "pre{{white-space:pre-wrap}}img{{max-width:100%}}</style></head><body>{}</body></html>"
)


def viewer_urls(model_admin: ModelAdmin) -> list:
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<int:pk>/view/",
            wrap(lambda r, pk: viewer_page(model_admin, r, pk)),
            name="capture_emailmessage_view",
        ),
        path(
            "<int:pk>/body/",
            wrap(xframe_options_sameorigin(lambda r, pk: body_frame(model_admin, r, pk))),
            name="capture_emailmessage_body",
        ),
        path(  # not admin_view: the sandboxed frame's image requests carry no session
            "<int:pk>/image/",
            never_cache(lambda r, pk: image_proxy(model_admin, r, pk)),
            name="capture_emailmessage_image",
        ),
        path(
            "<int:pk>/attachments/<int:attachment_id>/",
            wrap(lambda r, pk, attachment_id: download(model_admin, r, pk, attachment_id)),
            name="capture_emailmessage_attachment",
        ),
    ]


def _email_or_404(model_admin: ModelAdmin, request, pk: int) -> EmailMessage:
    if not model_admin.has_view_permission(request):
        raise Http404
    return get_object_or_404(visible_emails(Viewer.of(request)).select_related("thread"), pk=pk)


def _audit(request) -> dict:
    return {"actor": request.user, "channel": "admin", "address": client_address(request)}


def viewer_page(model_admin: ModelAdmin, request, pk: int) -> TemplateResponse:
    email = _email_or_404(model_admin, request, pk)
    viewer = Viewer.of(request)
    thread_messages = list(
        visible_emails(viewer)
        .filter(thread_id=email.thread_id)
        .order_by("date", "id")
        .only("id", "subject", "date", "from_address", "from_name", "direction", "kind")
        .prefetch_related(
            Prefetch("captures", queryset=Capture.objects.select_related("user").order_by("id"))
        )
    )
    accesses = access_map(viewer, [m.pk for m in thread_messages])
    access = accesses.get(email.pk) or access_for(viewer, email)
    rows = [
        {"email": m, "access": accesses[m.pk], "current": m.pk == email.pk} for m in thread_messages
    ]
    links = [
        {"link": link, "why": describe_link(link)}
        for link in ThreadLink.objects.filter(thread_id=email.thread_id)
        .select_related("contact", "organization", "item", "rule", "created_by")
        .order_by("created", "id")
    ]
    body_url = reverse("admin:capture_emailmessage_body", args=[email.pk])
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Message viewer",
        "opts": EmailMessage._meta,
        "email": email,
        "access": access,
        "hidden": access.hidden(),
        "thread": email.thread,
        "thread_rows": rows,
        "links": links,
        "participants": Participant.objects.filter(email=email).order_by("id"),
        "attachments": list(Attachment.objects.filter(email=email).order_by("id"))
        if access.attachments
        else [],
        "has_html": bool(email.html_body) and access.body,
        "has_text": bool(email.text_body) and access.body,
        "remote_images": access.body and has_remote_images(email.html_body),
        "body_url": body_url,
        "images_url": f"{body_url}?images=1",
        "text_url": f"{body_url}?format=text",
        "change_url": reverse("admin:capture_emailmessage_change", args=[email.pk]),
    }
    return TemplateResponse(request, "admin/capture/viewer.html", context)


def body_frame(model_admin: ModelAdmin, request, pk: int) -> HttpResponse:
    email = _email_or_404(model_admin, request, pk)
    access = access_for(Viewer.of(request), email)
    images = request.GET.get("images") == "1"
    if not access.body:
        html, part, images = f"<p>{escape(access.hidden())}</p>", "", False
    elif email.html_body and request.GET.get("format") != "text":
        proxy_base = reverse("admin:capture_emailmessage_image", args=[email.pk])
        body = sanitise_html(
            email.html_body,
            images=images,
            proxy=lambda url: f"{proxy_base}?src={sign_image(email.pk, url, request.user.pk)}",
        )
        html, part = body.html, "html"
    else:
        html, part, images = f"<pre>{escape(email.text_body)}</pre>", "text", False
    if part:
        record_event(
            "message.viewed",
            obj=email,
            detail={"part": part, "images": images, "surface": "admin_viewer"},
            **_audit(request),
        )
    response = HttpResponse(FRAME_PAGE.format(html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = body_csp(images=images)
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _image_viewer(model_admin: ModelAdmin, request, viewer_id: int | None):
    """Whose access decides an image request: the signed-in admin user, else the staff user
    the token was issued to (the sandboxed frame sends no cookie: its token was issued by the
    body view, behind the admin login); None when nobody may."""
    if model_admin.admin_site.has_permission(request):
        return request.user if viewer_id in (None, request.user.pk) else None
    if viewer_id is None:
        return None
    return get_user_model().objects.filter(pk=viewer_id, is_active=True, is_staff=True).first()


def image_proxy(model_admin: ModelAdmin, request, pk: int) -> HttpResponse:
    signed = image_token(pk, request.GET.get("src", ""))
    if signed is None:
        raise Http404
    url, viewer_id = signed
    user = _image_viewer(model_admin, request, viewer_id)
    opts = EmailMessage._meta
    if user is None or not (
        user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
        or user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
    ):
        raise Http404
    viewer = Viewer(user)
    email = get_object_or_404(visible_emails(viewer), pk=pk)
    if not access_for(viewer, email).body:
        raise Http404
    try:
        image = fetch_image(url)
    except ProxyRefused as e:
        response = HttpResponse(
            f"image not fetched: {e.reason}", status=502, content_type="text/plain"
        )
    else:
        response = HttpResponse(image.data, content_type=image.content_type)
        response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def download(model_admin: ModelAdmin, request, pk: int, attachment_id: int) -> FileResponse:
    email = _email_or_404(model_admin, request, pk)
    access = access_for(Viewer.of(request), email)
    if not access.attachments:
        return HttpResponse(access.hidden(), status=403, content_type="text/plain")
    att = get_object_or_404(
        Attachment.objects.select_related("blob"), pk=attachment_id, email=email
    )
    if att.blob is None:
        raise Http404
    record_event(
        "attachment.downloaded",
        obj=att,
        detail={"email": email.pk, "surface": "admin"},
        **_audit(request),
    )
    response = FileResponse(
        storage.open_blob(att.blob.storage_path),
        as_attachment=True,
        filename=att.filename or f"attachment-{att.pk}",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
