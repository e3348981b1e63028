"""End to end: a policy makes old mail due, the purge bins it, restore brings it back, the
vacuum removes it and its files for good."""

from __future__ import annotations

import pytest

from capture.models import BinnedMessage, EmailMessage, FileDeletion, PurgeRun
from capture.purge import purge_expired, restore, vacuum_bin
from capture.retention import recompute
from tests.capture.retention.helpers import capture, mail, policy, referenced_files, stored_files

pytestmark = pytest.mark.django_db


def test_delete_bin_restore_vacuum(settings):
    settings.MAILWARDEN_RETENTION_BIN_DAYS = 14
    email = capture(mail("a@x.example", attachment=b"%PDF-1.4 offer"))
    p = policy(duration_days=30)
    recompute()
    email.refresh_from_db()
    assert email.expiry_policy_id == p.pk and email.expiry_rule == "only_policy"
    files = stored_files()
    assert files and files == referenced_files()
    run = purge_expired()
    assert run.counts == {str(p.pk): {"delete": 1}}
    assert not EmailMessage.objects.exists()
    entry = BinnedMessage.objects.get()
    assert stored_files() == files  # the bin keeps the files
    restore(entry, actor="test", channel="test")
    email = EmailMessage.objects.get()
    assert email.disposition == "restored" and email.participants.count() == 2
    assert email.attachments.get().blob is not None
    purge_expired()
    assert EmailMessage.objects.count() == 1  # restored mail is not purged again
    # delete once more and vacuum
    from capture.purge import dispose_now

    dispose_now([email.pk], reason="test", actor="test")
    entry = BinnedMessage.objects.get()
    BinnedMessage.objects.filter(pk=entry.pk).update(vacuum_after=entry.binned_at)
    assert vacuum_bin() == 1
    assert not FileDeletion.objects.exists()
    assert stored_files() == set() == referenced_files()
    assert PurgeRun.objects.count() == 2
