from __future__ import annotations

from capture.imap.folders import find_sent_folder, parse_folder_list, plan_folders


def listing(*entries):
    return parse_folder_list([(flags, b"/", name) for name, flags in entries])


def test_sent_is_found_by_special_use_whatever_its_name():
    folders = listing(
        ("INBOX", ()), ("Gesendete Objekte", (b"\\HasNoChildren", b"\\Sent")), ("Sent", ())
    )
    assert find_sent_folder(folders).name == "Gesendete Objekte"


def test_sent_falls_back_to_well_known_names_without_special_use():
    assert find_sent_folder(listing(("INBOX", ()), ("Sent Items", ()))).name == "Sent Items"
    assert find_sent_folder(listing(("[Gmail]/Sent Mail", ()))).name == "[Gmail]/Sent Mail"
    assert find_sent_folder(listing(("INBOX", ()), ("Archive", ()))) is None


def test_default_plan_is_inbox_and_sent():
    plan = plan_folders(listing(("INBOX", ()), ("Sent", ()), ("Archive", ())), [], [])
    assert plan.sync == ("INBOX", "Sent")


def test_inbox_matches_case_insensitively_and_excluded_names_match_the_leaf():
    folders = listing(("INBOX", ()), ("INBOX/Trash", ()), ("Work/Spam", ()))
    plan = plan_folders(folders, ["inbox", "INBOX/Trash", "Work/Spam"], ["trash", "Spam"])
    assert plan.sync == ("INBOX",)
    assert {name for name, _ in plan.excluded} == {"INBOX/Trash", "Work/Spam"}


def test_unselectable_folders_are_not_synced():
    plan = plan_folders(listing(("INBOX", ()), ("Lists", (b"\\Noselect",))), ["INBOX", "Lists"], [])
    assert plan.sync == ("INBOX",)
