"""Plain helpers for admin tests."""

from __future__ import annotations

from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import make_user


def superuser_client() -> tuple[Client, object]:
    user = make_user(username="root-admin", is_staff=True, is_superuser=True, role="admin")
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(user)
    return client, user


def csv_format_index(model) -> str:
    formats = admin.site._registry[model].get_import_formats()
    return str(next(i for i, f in enumerate(formats) if f().get_title() == "csv"))


def import_csv(client: Client, model, text: str, *, confirm: bool = True):
    """Upload a CSV on the import page; when it has no errors and confirm=True, confirm it.

    Returns (first response, confirm response or None).
    """
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}"
    upload = SimpleUploadedFile("rows.csv", text.encode(), content_type="text/csv")
    first = client.post(
        f"{base}/import/", {"import_file": upload, "format": csv_format_index(model)}
    )
    result = first.context["result"] if first.context and "result" in first.context else None
    if not confirm or result is None or result.has_errors() or result.has_validation_errors():
        return first, None
    form = first.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return first, client.post(f"{base}/process_import/", data)
