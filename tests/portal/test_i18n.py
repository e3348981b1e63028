"""Languages (docs/admin.md "Languages"): English, Norwegian Bokmål, Swedish and Polish.

The browser's Accept-Language decides for a visitor; a signed-in user's profile language
(crm.User.language) wins over it; the header's switcher (/i18n/setlang/) saves the choice to
the profile. The catalogues in locale/ compile without fuzzy or broken entries, and the
committed .mo files say what their .po files say.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from governance.models import AuditEvent
from tests.factories import make_user
from tests.services import require_service

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGS = [code for code, _ in settings.LANGUAGES if code != "en"]


def staff(**extra):
    return make_user(is_staff=True, is_superuser=True, role="admin", **extra)


# --- the language a page is shown in ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "lang, title, panel",
    [
        ("nb", "Oversikt", "Gjennomgangskø"),
        ("sv", "Översikt", "Granskningskö"),
        ("pl", "Pulpit", "Zaległości w przeglądzie"),
    ],
)
def test_accept_language_gives_the_dashboard_in_that_language(client, lang, title, panel):
    client.force_login(staff())
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    assert f"<title>{title} | Mailwarden</title>" in html
    assert panel in html
    assert f'<html lang="{lang}"' in html
    # the English page stays English (tests elsewhere compare its texts)
    english = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<title>Dashboard | Mailwarden</title>" in english
    assert "Review backlog" in english and panel not in english


@pytest.mark.django_db
def test_the_dashboard_with_every_chart_filled_renders_in_each_language(client):
    """The charts' labels (choice labels are lazy translations) reach pygal as text."""
    import io

    from django.core.management import call_command

    from config.portal.dashboard import refresh_snapshot

    call_command("seed_demo", organizations=6, messages=24, stdout=io.StringIO())
    refresh_snapshot()
    client.force_login(staff())
    for lang, consent in (
        ("en", "Consent coverage"),
        ("nb", "Samtykkedekning"),
        ("pl", "Pokrycie zgodami"),
    ):
        resp = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE=lang)
        assert resp.status_code == 200
        assert consent in resp.content.decode()


@pytest.mark.django_db
def test_the_login_page_follows_the_browser(client):
    html = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="nb-NO,nb;q=0.9,en;q=0.5").content
    html = html.decode()
    assert 'value="Logg inn"' in html  # Django's own catalogue
    assert "Språk" in html  # our switcher in the header
    # a language we do not offer falls back to English
    german = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert 'value="Log in"' in german


@pytest.mark.django_db
def test_the_profile_language_beats_the_browser(client):
    user = staff(language="pl")
    client.force_login(user)
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "<title>Pulpit | Mailwarden</title>" in html
    assert "Översikt" not in html
    # empty profile language: the browser decides again
    user.language = ""
    user.save(update_fields=["language"])
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "<title>Översikt | Mailwarden</title>" in html


@pytest.mark.django_db
def test_the_switcher_saves_the_choice_to_the_profile_and_is_audited(client):
    user = staff()
    client.force_login(user)
    resp = client.post(
        reverse("set_language"), {"language": "sv", "next": "/admin/"}, HTTP_ACCEPT_LANGUAGE="pl"
    )
    assert resp.status_code == 302 and resp["Location"] == "/admin/"
    user.refresh_from_db()
    assert user.language == "sv"
    event = AuditEvent.objects.get(action="user.language_changed")
    assert event.detail == {"from": "", "to": "sv"}
    assert event.actor_user_id == user.pk and event.channel == "web"
    # the browser still asks for Polish; the profile says Swedish
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="pl").content.decode()
    assert "<title>Översikt | Mailwarden</title>" in html


@pytest.mark.django_db
def test_the_switcher_for_a_visitor_sets_the_cookie_only(client):
    resp = client.post(reverse("set_language"), {"language": "nb", "next": "/admin/login/"})
    assert resp.cookies[settings.LANGUAGE_COOKIE_NAME].value == "nb"
    html = client.get("/admin/login/").content.decode()
    assert 'value="Logg inn"' in html
    assert not AuditEvent.objects.filter(action="user.language_changed").exists()
    # a language we do not offer is ignored
    client.post(reverse("set_language"), {"language": "xx", "next": "/admin/login/"})
    assert 'value="Logg inn"' in client.get("/admin/login/").content.decode()


@pytest.mark.django_db
def test_the_me_page_sets_and_clears_the_profile_language(client):
    user = make_user()
    client.force_login(user)
    resp = client.post("/me/", {"action": "language", "language": "nb"})
    assert resp.status_code == 302
    user.refresh_from_db()
    assert user.language == "nb"
    html = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Mine fangstinnstillinger" in html and "Språket ditt er lagret." in html
    client.post("/me/", {"action": "language", "language": ""})
    user.refresh_from_db()
    assert user.language == ""
    html = client.get("/me/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Mina fångstinställningar" in html
    # a language we do not offer is a form error, nothing saved
    html = client.post("/me/", {"action": "language", "language": "xx"}).content.decode()
    assert 'class="errorlist' in html
    user.refresh_from_db()
    assert user.language == ""


@pytest.mark.django_db
def test_the_settings_api_reads_and_changes_the_language():
    user = make_user()
    api = APIClient()
    api.force_login(user)
    assert api.get("/api/v1/me/settings/").json()["language"] == ""
    body = api.patch("/api/v1/me/settings/", {"language": "pl"}, format="json").json()
    assert body["language"] == "pl"
    user.refresh_from_db()
    assert user.language == "pl"
    assert AuditEvent.objects.filter(action="user.language_changed", channel="api").exists()
    resp = api.patch("/api/v1/me/settings/", {"language": "de"}, format="json")
    assert resp.status_code == 400 and "language" in resp.json()
    cleared = api.patch("/api/v1/me/settings/", {"language": None}, format="json").json()
    assert cleared["language"] == ""


@pytest.mark.django_db
def test_api_validation_messages_follow_the_language():
    api = APIClient()
    api.force_login(make_user(language="nb"))
    resp = api.post("/api/v1/me/never-log/", {"kind": "address", "value": "x@example.com"})
    assert resp.status_code == 201
    again = api.post("/api/v1/me/never-log/", {"kind": "address", "value": "x@example.com"})
    assert again.status_code == 400
    assert again.json()["value"] == ["Denne regelen finnes allerede."]


@pytest.mark.django_db
def test_a_token_request_gets_its_users_profile_language():
    from crm.models import ApiToken
    from tests.crm.api_helpers import token_client

    scopes = [ApiToken.Scope.CAPTURE_READ, ApiToken.Scope.CAPTURE_WRITE]
    swedish = token_client(scopes, user=make_user(language="sv"))
    body = {"kind": "address", "value": "y@example.com"}
    assert swedish.post("/api/v1/me/never-log/", body, format="json").status_code == 201
    again = swedish.post("/api/v1/me/never-log/", body, format="json", HTTP_ACCEPT_LANGUAGE="pl")
    assert again.json()["value"] == ["Den här regeln finns redan."]
    # no profile language: the request's Accept-Language
    browser = token_client(scopes)
    browser.post("/api/v1/me/never-log/", body, format="json")
    again = browser.post("/api/v1/me/never-log/", body, format="json", HTTP_ACCEPT_LANGUAGE="pl")
    assert again.json()["value"] == ["Ta reguła już istnieje."]


# --- the catalogues -----------------------------------------------------------------------------


def _msgfmt() -> str:
    path = shutil.which("msgfmt")
    require_service(path is not None, "GNU gettext's msgfmt (apt-get install gettext)")
    return path


@pytest.mark.parametrize("lang", LANGS)
def test_every_catalogue_compiles_without_fuzzy_or_broken_entries(lang, tmp_path):
    po = LOCALE / lang / "LC_MESSAGES" / "django.po"
    text = po.read_text(encoding="utf-8")
    assert "#, fuzzy" not in text and ", fuzzy" not in text
    # --check: header, plural forms and every python-format placeholder match the msgid
    run = subprocess.run(
        [_msgfmt(), "--check", "--statistics", "-o", str(tmp_path / "out.mo"), str(po)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    translated = int(re.search(r"(\d+) translated", run.stderr).group(1))
    assert translated >= 350, run.stderr
    # the committed .mo (what runs without gettext installed) says what the .po says
    committed = gettext.GNUTranslations((po.with_suffix(".mo")).open("rb"))
    fresh = gettext.GNUTranslations((tmp_path / "out.mo").open("rb"))
    assert committed._catalog == fresh._catalog, "run `make messages` and commit the .mo files"


def test_placeholders_survive_translation():
    """Without msgfmt too: every %(name)s of a msgid appears in its translations."""
    for lang in LANGS:
        mo = gettext.GNUTranslations((LOCALE / lang / "LC_MESSAGES" / "django.mo").open("rb"))
        for key, value in mo._catalog.items():
            msgid = key[0] if isinstance(key, tuple) else key
            if not msgid:
                continue
            msgid = msgid.split("\x04")[-1]
            wanted = set(re.findall(r"%\(\w+\)[sd]", msgid))
            assert wanted <= set(re.findall(r"%\(\w+\)[sd]", value)), (lang, msgid, value)
