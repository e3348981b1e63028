from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from capture.imap.lease import acquire_lease
from capture.imap.reconcile import reconcile_mailbox
from capture.imap.sync import sync_mailbox
from capture.models import EmailMessage, MailboxFolder, RawMessage
from capture.models.channels import SkippedUid
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.capture.imap.conftest import days_ago, make_message
from tests.factories import make_never_log_rule, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(django_capture_on_commit_callbacks):
    """Sync a mailbox and run the pipeline on what was stored, as a worker would."""

    def run(mailbox) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            report = sync_mailbox(mailbox.pk)
        assert report.status == "ok", report.summary()

    return run


def uid_of(mailbox, folder: str, message_id: str) -> int:
    raw = RawMessage.objects.get(mailbox=mailbox, email__message_id=message_id.strip("<>"))
    prefix = f"imap:{mailbox.pk}:{folder}:"
    assert raw.idempotency_key.startswith(prefix)
    return int(raw.idempotency_key.rsplit(":", 1)[1])


def inbox(report):
    [folder] = [f for f in report.folders if f.name == "INBOX"]
    return folder


def test_a_healthy_mailbox_has_a_gap_of_zero_and_the_result_is_kept(dovecot, make_mailbox, synced):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(3)])
    dovecot.append(mailbox.username, "Sent Mail", [make_message()])
    synced(mailbox)

    report = reconcile_mailbox(mailbox.pk, actor="test", channel="cli")

    assert report.status == "ok"
    assert [(f.name, f.server, f.stored, f.gap) for f in report.folders] == [
        ("INBOX", 3, 3, 0),
        ("Sent Mail", 1, 1, 0),
    ]
    assert report.gap == 0
    mailbox.refresh_from_db()
    assert mailbox.reconcile_gap == 0
    assert mailbox.last_reconciled_at is not None
    event = AuditEvent.objects.get(action="mailbox.reconciled", object_id=str(mailbox.pk))
    assert event.detail["gap"] == 0
    assert event.detail["stored"] == 4
    assert "INBOX" not in str(event.detail)  # counts only


def test_a_message_deleted_behind_the_syncs_back_is_a_gap_of_one_with_its_uid(
    dovecot, make_mailbox, synced
):
    mailbox = make_mailbox(folders=["INBOX"])
    lost = make_message(message_id="<lost-one@example.com>")
    dovecot.append(mailbox.username, "INBOX", [make_message(), lost, make_message()])
    synced(mailbox)
    uid = uid_of(mailbox, "INBOX", "<lost-one@example.com>")
    EmailMessage.objects.filter(message_id="lost-one@example.com").delete()

    report = reconcile_mailbox(mailbox.pk)

    assert report.gap == 1
    assert inbox(report).gap_uids == [uid]
    assert inbox(report).stored == 2
    mailbox.refresh_from_db()
    assert mailbox.reconcile_gap == 1


def test_fetching_the_missing_stores_a_deleted_message_again_and_the_gap_closes(
    dovecot, make_mailbox, synced, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(message_id="<back@example.com>")])
    dovecot.append(mailbox.username, "INBOX", [make_message()])
    synced(mailbox)
    EmailMessage.objects.filter(message_id="back@example.com").delete()
    assert reconcile_mailbox(mailbox.pk).gap == 1

    with django_capture_on_commit_callbacks(execute=True):
        fetched = reconcile_mailbox(mailbox.pk, fetch_missing=True)

    assert fetched.status == "ok"
    assert inbox(fetched).fetched == 1
    assert fetched.gap == 0
    assert EmailMessage.objects.filter(message_id="back@example.com").exists()
    assert reconcile_mailbox(mailbox.pk).gap == 0
    mailbox.refresh_from_db()
    assert mailbox.reconcile_gap == 0


def test_a_deleted_raw_row_is_a_gap_and_fetching_stores_it_again(
    dovecot, make_mailbox, synced, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(message_id="<raw-gone@example.com>")])
    synced(mailbox)
    uid = uid_of(mailbox, "INBOX", "<raw-gone@example.com>")
    RawMessage.objects.filter(mailbox=mailbox).delete()

    assert inbox(reconcile_mailbox(mailbox.pk)).gap_uids == [uid]
    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_mailbox(mailbox.pk, fetch_missing=True)

    assert report.gap == 0
    assert uid_of(mailbox, "INBOX", "<raw-gone@example.com>") == uid


def test_a_message_skipped_as_too_large_is_accounted_for_with_its_reason(
    dovecot, make_mailbox, synced, settings
):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 8000
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=1000)])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=20_000)])
    synced(mailbox)

    folder = inbox(reconcile_mailbox(mailbox.pk))

    assert (folder.stored, folder.skipped, folder.gap) == (1, {"too_large": 1}, 0)


def test_every_skipped_uid_is_accounted_for_beyond_the_last_100_the_log_keeps(
    dovecot, make_mailbox, synced, settings
):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 1000
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=3000) for _ in range(120)])
    synced(mailbox)
    assert len(MailboxFolder.objects.get(mailbox=mailbox).skipped_log) == 100

    folder = inbox(reconcile_mailbox(mailbox.pk))

    assert folder.skipped == {"too_large": 120}
    assert folder.gap == 0


def test_a_message_rejected_by_the_pipeline_is_accounted_for_with_its_reason(
    dovecot, make_mailbox, synced
):
    make_never_log_rule("private-doctor.example")
    mailbox = make_mailbox(folders=["INBOX"])
    private = make_message().replace(
        b"From: Customer", b"From: Doctor <dr@private-doctor.example>\r\nX-Was-From: Customer"
    )
    dovecot.append(mailbox.username, "INBOX", [make_message(), private])
    synced(mailbox)
    assert RawMessage.objects.filter(mailbox=mailbox, status="rejected").count() == 1

    folder = inbox(reconcile_mailbox(mailbox.pk))

    assert (folder.stored, folder.rejected, folder.gap) == (1, {"never_log": 1}, 0)


def test_a_message_already_captured_from_another_folder_is_accounted_for(
    dovecot, make_mailbox, synced
):
    mailbox = make_mailbox(folders=["INBOX", "Projects"])
    copy = make_message(message_id="<in-two-folders@example.com>")
    dovecot.append(mailbox.username, "INBOX", [copy])
    dovecot.append(mailbox.username, "Projects", [make_message()])
    synced(mailbox)
    dovecot.append(mailbox.username, "Projects", [copy])
    synced(mailbox)

    report = reconcile_mailbox(mailbox.pk)

    [projects] = [f for f in report.folders if f.name == "Projects"]
    assert (projects.stored, projects.skipped, projects.gap) == (1, {"already_captured": 1}, 0)


def test_mail_older_than_the_first_syncs_window_is_outside_the_window_not_a_gap(
    dovecot, make_mailbox, synced
):
    mailbox = make_mailbox(folders=["INBOX"], sync_window_days=30)
    dovecot.append(mailbox.username, "INBOX", [make_message()], msg_time=days_ago(90))
    dovecot.append(mailbox.username, "INBOX", [make_message()], msg_time=days_ago(1))
    synced(mailbox)

    folder = inbox(reconcile_mailbox(mailbox.pk))

    assert (folder.checked, folder.stored, folder.skipped, folder.gap) == (
        2, 1, {"before_window": 1}, 0,
    )  # fmt: skip


def test_uids_above_the_checkpoint_are_pending_not_a_gap(dovecot, make_mailbox, synced):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message()])
    synced(mailbox)
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])

    folder = inbox(reconcile_mailbox(mailbox.pk))

    assert (folder.server, folder.checked, folder.pending, folder.gap) == (3, 1, 2, 0)


def test_a_uidvalidity_change_is_reported_as_a_resync_not_a_gap(dovecot, make_mailbox, synced):
    mailbox = make_mailbox(folders=["Archive"])
    dovecot.append(mailbox.username, "Archive", [make_message() for _ in range(2)])
    synced(mailbox)
    dovecot.recreate_folder(mailbox.username, "Archive")

    [folder] = reconcile_mailbox(mailbox.pk).folders

    assert folder.resync
    assert (folder.pending, folder.gap) == (2, 0)
    assert "re-syncs" in folder.line()


def test_a_mailbox_being_synced_is_reported_busy_and_nothing_is_recorded(make_mailbox):
    mailbox = make_mailbox()
    assert acquire_lease(mailbox.pk)

    report = reconcile_mailbox(mailbox.pk)

    assert report.status == "busy"
    mailbox.refresh_from_db()
    assert mailbox.last_reconciled_at is None
    assert not AuditEvent.objects.filter(action="mailbox.reconciled").exists()


def test_skip_records_of_an_old_uidvalidity_are_dropped_on_resync(
    dovecot, make_mailbox, synced, settings
):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 8000
    mailbox = make_mailbox(folders=["Archive"])
    dovecot.append(mailbox.username, "Archive", [make_message(size=20_000)])
    synced(mailbox)
    dovecot.recreate_folder(mailbox.username, "Archive")

    synced(mailbox)

    validity = dovecot.uidvalidity(mailbox.username, "Archive")
    assert list(SkippedUid.objects.values_list("uidvalidity", "uid")) == [(validity, 1)]
    assert reconcile_mailbox(mailbox.pk).gap == 0


def test_a_large_folder_is_compared_in_chunks_not_message_by_message(
    dovecot, make_mailbox, monkeypatch, django_assert_max_num_queries
):
    from capture.imap import reconcile

    monkeypatch.setattr(reconcile, "CHUNK", 100)
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=200) for _ in range(450)])
    assert sync_mailbox(mailbox.pk, enqueue=False).total("stored") == 450  # pending: stored

    # 5 chunks of 2 lookups, plus a fixed dozen or so (mailbox, lease, folder, result, audit):
    # one lookup per message would be 450.
    with django_assert_max_num_queries(30):
        report = reconcile_mailbox(mailbox.pk)

    assert (inbox(report).stored, report.gap) == (450, 0)


# --------------------------------------------------------------------------- doors


def test_the_command_prints_each_folder_and_exits_1_on_a_gap(dovecot, make_mailbox, synced):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])
    synced(mailbox)
    RawMessage.objects.filter(mailbox=mailbox).first().delete()
    out = StringIO()

    with pytest.raises(SystemExit) as exit_:
        call_command("reconcile_mailbox", str(mailbox.pk), stdout=out)

    assert exit_.value.code == 1
    assert "INBOX: server=2 checked=2 stored=1" in out.getvalue()
    assert out.getvalue().rstrip().endswith("gap=1")


def test_the_command_exits_0_for_a_healthy_mailbox_and_after_fetching_the_missing(
    dovecot, make_mailbox, synced, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])
    synced(mailbox)
    healthy = StringIO()
    call_command("reconcile_mailbox", str(mailbox.pk), stdout=healthy)
    assert healthy.getvalue().rstrip().endswith("gap=0")
    RawMessage.objects.filter(mailbox=mailbox).first().delete()
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("reconcile_mailbox", str(mailbox.pk), "--fetch-missing", stdout=out)

    assert "fetched=1" in out.getvalue()
    assert out.getvalue().rstrip().endswith("gap=0")
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 2


def test_the_command_exits_2_when_the_mailbox_cannot_be_checked(make_mailbox):
    from django.core.management import CommandError

    mailbox = make_mailbox()
    assert acquire_lease(mailbox.pk)
    out = StringIO()

    with pytest.raises(CommandError) as error:
        call_command("reconcile_mailbox", str(mailbox.pk), stdout=out)

    assert error.value.returncode == 2
    assert f"mailbox {mailbox.pk}: busy" in out.getvalue()


def test_the_command_refuses_an_unknown_mailbox():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("reconcile_mailbox", "424242")


def test_the_admin_action_reports_the_gap_and_its_fetch_variant_closes_it(
    dovecot, make_mailbox, synced, client, django_capture_on_commit_callbacks
):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])
    synced(mailbox)
    RawMessage.objects.filter(mailbox=mailbox).first().delete()
    changelist = "/admin/capture/mailboxconnection/"

    page = client.post(
        changelist, {"action": "reconcile", "_selected_action": [mailbox.pk]}, follow=True
    ).content.decode()

    assert "gap=1" in page
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            changelist,
            {"action": "reconcile_and_fetch", "_selected_action": [mailbox.pk]},
            follow=True,
        ).content.decode()
    assert "fetched=1" in page and "gap=0" in page
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 2
    assert "Reconciliation gap" in client.get(changelist).content.decode()
    assert AuditEvent.objects.filter(action="mailbox.reconciled", channel="admin").count() == 2


def api_client(user: User, scopes=("capture:read", "capture:write")) -> APIClient:
    _, key = ApiToken.issue(user=user, name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_api_action_returns_the_report_and_fetches_the_missing_on_request(
    dovecot, make_mailbox, synced, django_capture_on_commit_callbacks
):
    owner = make_user()
    mailbox = make_mailbox(owner=owner, folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])
    synced(mailbox)
    RawMessage.objects.filter(mailbox=mailbox).first().delete()
    url = f"/api/v1/mailboxes/{mailbox.pk}/reconcile/"

    response = api_client(owner).post(url)

    assert response.status_code == 200, response.content
    assert response.json()["gap"] == 1
    assert response.json()["folders"][0]["gap"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(owner).post(url, {"fetch_missing": True}, format="json")
    assert response.status_code == 200
    assert (response.json()["gap"], response.json()["fetched"]) == (0, 1)
    assert api_client(owner).get(f"/api/v1/mailboxes/{mailbox.pk}/").json()["reconcile_gap"] == 0


def test_the_api_action_is_refused_to_other_members_and_read_only_tokens(make_mailbox):
    owner = make_user()
    mailbox = make_mailbox(owner=owner)
    url = f"/api/v1/mailboxes/{mailbox.pk}/reconcile/"

    assert api_client(make_user()).post(url).status_code == 404  # not even visible to them
    assert api_client(owner, scopes=("capture:read",)).post(url).status_code == 403
    assert api_client(owner).post(url, {"fetch": True}, format="json").status_code == 400
    assert not AuditEvent.objects.filter(action="mailbox.reconciled").exists()


def test_an_admin_may_reconcile_anyones_mailbox_through_the_api(dovecot, make_mailbox, synced):
    mailbox = make_mailbox(folders=["INBOX"])
    dovecot.append(mailbox.username, "INBOX", [make_message()])
    synced(mailbox)

    response = api_client(make_user(role=User.Role.ADMIN)).post(
        f"/api/v1/mailboxes/{mailbox.pk}/reconcile/"
    )

    assert response.status_code == 200
    assert response.json()["gap"] == 0


def test_a_paused_mailbox_is_not_reconciled_through_the_api(make_mailbox):
    owner = make_user()
    mailbox = make_mailbox(owner=owner, paused_reason="Paused by an admin.")

    response = api_client(owner).post(f"/api/v1/mailboxes/{mailbox.pk}/reconcile/")

    assert response.status_code == 409
    assert response.json()["status"] == "paused"
