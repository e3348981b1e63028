"""Which folders of a mailbox are synced: pure functions over the server's LIST answer.

Special-use flags (RFC 6154) say what a folder is whatever its name or language; names are
the fallback for servers without SPECIAL-USE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SENT_FALLBACK_NAMES = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail")
# Never captured, whatever the configuration: drafts are not mail yet (no CRM logs a draft), junk and
# trash are not business mail.
EXCLUDED_SPECIAL_USE = frozenset({"\\drafts", "\\junk", "\\trash"})


@dataclass(frozen=True)
class ServerFolder:
    name: str
    flags: frozenset[str]  # lower-case, e.g. "\\sent", "\\noselect"
    delimiter: str = "/"

    @property
    def selectable(self) -> bool:
        return not ({"\\noselect", "\\nonexistent"} & self.flags)

    @property
    def leaf(self) -> str:
        return self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name


@dataclass(frozen=True)
class FolderPlan:
    sync: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]  # (folder, reason)
    missing: tuple[str, ...]  # configured but not on the server


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_folder_list(
    listing: Iterable[tuple[Sequence[bytes | str], bytes | str | None, str]],
) -> list[ServerFolder]:
    """imapclient's list_folders() answer → ServerFolder list."""
    return [
        ServerFolder(
            name=name,
            flags=frozenset(_text(f).lower() for f in flags),
            delimiter=_text(delimiter) if delimiter else "",
        )
        for flags, delimiter, name in listing
    ]


def _is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"  # RFC 3501 5.1: INBOX is case-insensitive


def find_sent_folder(folders: Sequence[ServerFolder]) -> ServerFolder | None:
    """The \\Sent folder by SPECIAL-USE flag, else by a well-known name."""
    for folder in folders:
        if "\\sent" in folder.flags and folder.selectable:
            return folder
    by_name = {f.name.lower(): f for f in folders if f.selectable}
    by_leaf = {f.leaf.lower(): f for f in folders if f.selectable}
    for candidate in SENT_FALLBACK_NAMES:
        found = by_name.get(candidate.lower()) or by_leaf.get(candidate.lower())
        if found:
            return found
    return None


def exclusion_reason(folder: ServerFolder, excluded_names: Iterable[str]) -> str:
    """Why this folder is never synced ("" when it may be)."""
    special = EXCLUDED_SPECIAL_USE & folder.flags
    if special:
        return f"special-use {sorted(special)[0]}"
    wanted = {n.strip().lower() for n in excluded_names if n.strip()}
    if folder.name.lower() in wanted or folder.leaf.lower() in wanted:
        return "excluded by name"
    if not folder.selectable:
        return "not selectable"
    return ""


def plan_folders(
    server: Sequence[ServerFolder], configured: Sequence[str], excluded_names: Iterable[str]
) -> FolderPlan:
    """Configured folders (or INBOX + Sent when none), minus every excluded one."""
    excluded_names = list(excluded_names)
    by_name = {f.name: f for f in server}
    by_lower = {f.name.lower(): f for f in server}
    wanted: list[ServerFolder] = []
    missing: list[str] = []
    if configured:
        for name in configured:
            found = by_name.get(name) or (by_lower.get("inbox") if _is_inbox(name) else None)
            if found is None:
                missing.append(name)
            else:
                wanted.append(found)
    else:
        inbox = by_lower.get("inbox")
        if inbox is not None:
            wanted.append(inbox)
        sent = find_sent_folder(server)
        if sent is not None:
            wanted.append(sent)
    sync: list[str] = []
    excluded: list[tuple[str, str]] = []
    for folder in wanted:
        reason = exclusion_reason(folder, excluded_names)
        if reason:
            excluded.append((folder.name, reason))
        elif folder.name not in sync:
            sync.append(folder.name)
    return FolderPlan(tuple(sync), tuple(excluded), tuple(missing))
