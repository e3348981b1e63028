"""The add-in manifest served at /addin/manifest.xml.

No XSD validation here: Microsoft's add-in manifest schemas are published on
learn.microsoft.com, not in a package registry, and `office-addin-manifest` (npm) validates
by sending the manifest to a Microsoft web service (no network in CI). So the structure is
checked against what those schemas require of a MailApp manifest, element by element (order
of the OfficeApp sequence, required children, resource ids, URLs on this server)."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET  # our own output, parsed in a test

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
    "ov": "http://schemas.microsoft.com/office/mailappversionoverrides",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"
# The OfficeApp sequence of the schema (the elements this manifest uses, in schema order).
OFFICEAPP_ORDER = [
    "Id", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description", "IconUrl",
    "HighResolutionIconUrl", "SupportUrl", "AppDomains", "Hosts", "Requirements",
    "FormSettings", "Permissions", "Rule", "DisableEntityHighlighting", "VersionOverrides",
]  # fmt: skip
REQUIRED = {
    "Id",
    "Version",
    "ProviderName",
    "DefaultLocale",
    "DisplayName",
    "Description",
    "Hosts",
    "Requirements",
    "FormSettings",
    "Permissions",
    "Rule",
}


def manifest(client: Client, **extra) -> tuple[ET.Element, bytes]:
    response = client.get("/addin/manifest.xml", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content), response.content  # noqa: S314


def local(tag: str) -> str:
    return tag.split("}", 1)[1]


def test_the_manifest_is_a_mail_app_in_schema_order_with_the_required_parts():
    root, _ = manifest(Client())
    assert local(root.tag) == "OfficeApp" and root.get(XSI_TYPE) == "MailApp"
    names = [local(child.tag) for child in root]
    assert REQUIRED <= set(names)
    assert names == [n for n in OFFICEAPP_ORDER if n in names], names
    assert uuid.UUID(root.findtext("o:Id", namespaces=NS))
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", root.findtext("o:Version", namespaces=NS))
    assert root.find("o:Hosts/o:Host", NS).get("Name") == "Mailbox"
    sets = root.find("o:Requirements/o:Sets/o:Set", NS)
    assert sets.get("Name") == "Mailbox" and re.fullmatch(r"1\.\d+", sets.get("MinVersion"))
    assert root.findtext("o:Permissions", namespaces=NS) in (
        "Restricted", "ReadItem", "ReadWriteItem", "ReadWriteMailbox",
    )  # fmt: skip
    forms = {f.get(XSI_TYPE) for f in root.findall("o:FormSettings/o:Form", NS)}
    assert forms == {"ItemRead", "ItemEdit"}
    rules = {
        (r.get("ItemType"), r.get("FormType"))
        for r in root.iter(f"{{{NS['o']}}}Rule")
        if r.get(XSI_TYPE) == "ItemIs"
    }
    assert {("Message", "Read"), ("Appointment", "Read"), ("Message", "Edit")} <= rules


def test_version_overrides_has_read_compose_and_meeting_commands_whose_resources_exist():
    root, _ = manifest(Client())
    vo = root.find("ov:VersionOverrides", NS)
    assert vo is not None and vo.get(XSI_TYPE) == "VersionOverridesV1_0"
    sets = vo.find("ov:Requirements/bt:Sets", NS)
    assert sets.find("bt:Set", NS).get("Name") == "Mailbox"
    host = vo.find("ov:Hosts/ov:Host", NS)
    assert host.get(XSI_TYPE) == "MailHost"
    points = {
        p.get(XSI_TYPE): p for p in host.findall("ov:DesktopFormFactor/ov:ExtensionPoint", NS)
    }
    assert set(points) == {
        "MessageReadCommandSurface", "MessageComposeCommandSurface", "AppointmentAttendeeCommandSurface",
    }  # fmt: skip
    resources = vo.find("ov:Resources", NS)
    ids = {el.get("id") for el in resources.iter() if el.get("id")}
    referenced = {el.get("resid") for el in vo.iter() if el.get("resid")}
    assert referenced and referenced <= ids, referenced - ids
    for point in points.values():
        action = point.find(".//ov:Action", NS)
        assert action.get(XSI_TYPE) == "ShowTaskpane"
        assert action.find("ov:SourceLocation", NS).get("resid") in ids
    for control in vo.iter(f"{{{NS['ov']}}}Control"):
        sizes = {img.get("size") for img in control.findall("ov:Icon/bt:Image", NS)}
        assert sizes == {"16", "32", "80"}
    # ids are unique across the manifest, as the schema's keys require (OfficeTab names the
    # host's built-in tab, the same in every extension point)
    all_ids = [el.get("id") for el in root.iter() if el.get("id") and local(el.tag) != "OfficeTab"]
    assert len(all_ids) == len(set(all_ids))


def test_every_url_is_on_this_server_and_answers(settings):
    client = Client()
    root, _ = manifest(client)
    urls = {
        value
        for el in root.iter()
        for value in (el.get("DefaultValue") or "", (el.text or "").strip())
        if value.startswith("http")
    }
    assert urls
    for url in sorted(urls):
        text = url
        assert text.startswith("http://testserver"), text
        path = text.removeprefix("http://testserver") or "/"
        if path in ("/", "/me/"):
            continue  # the app domain (an origin) and the support page (needs a login)
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    pane = client.get("/addin/read/")
    assert "X-Frame-Options" not in pane  # Outlook on the web frames the pane
    assert b"https://appsforoffice.microsoft.com/lib/1/hosted/office.js" in pane.content
    # nothing else from another origin
    others = set(re.findall(rb'(?:src|href)="(https?://[^"/]+)', pane.content))
    assert others <= {b"http://testserver", b"https://appsforoffice.microsoft.com"}


def test_the_server_url_comes_from_the_setting_when_set(settings):
    settings.MAILWARDEN_PUBLIC_URL = "https://crm.example.com/"
    root, raw = manifest(Client())
    assert b"http://testserver" not in raw
    assert (
        root.find("o:FormSettings/o:Form/o:DesktopSettings/o:SourceLocation", NS).get(
            "DefaultValue"
        )
        == "https://crm.example.com/addin/read/"
    )
    other_id = root.findtext("o:Id", namespaces=NS)
    settings.MAILWARDEN_PUBLIC_URL = ""
    assert manifest(Client())[0].findtext("o:Id", namespaces=NS) != other_id


def test_assets_are_only_the_panes_own_files():
    client = Client()
    assert client.get("/addin/assets/read.js")["Content-Type"].startswith("text/javascript")
    assert client.get("/addin/assets/icon-16.png")["Content-Type"] == "image/png"
    for bad in ("../views.py", "..%2Fviews.py", ".hidden.js", "nope.js", "manifest.xml"):
        assert client.get(f"/addin/assets/{bad}").status_code == 404, bad
