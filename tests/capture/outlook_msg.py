"""Write small Outlook .msg files for tests: no binary fixture is committed, each test makes its
own with extract-msg's OleWriter (an OLE compound file laid out as [MS-OXMSG] describes: a
property stream, one `__substg1.0_<id><type>` stream per string or binary property, one
storage per attachment)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

PT_LONG, PT_SYSTIME, PT_UNICODE, PT_BINARY = 0x0003, 0x0040, 0x001F, 0x0102
PROP_READABLE_WRITABLE = 6
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)

# Property ids ([MS-OXPROPS]).
MESSAGE_CLASS, SUBJECT, CLIENT_SUBMIT_TIME, TRANSPORT_HEADERS = 0x001A, 0x0037, 0x0039, 0x007D
SENDER_NAME, BODY, HTML = 0x0C1A, 0x1000, 0x1013
ATTACH_DATA, ATTACH_METHOD, ATTACH_LONG_FILENAME, ATTACH_MIME_TAG = 0x3701, 0x3705, 0x3707, 0x370E


class _Properties:
    """A `__properties_version1.0` stream and the streams its variable-size values live in."""

    def __init__(self, header: bytes) -> None:
        self.header = header
        self.entries: list[bytes] = []
        self.streams: dict[str, bytes] = {}

    def string(self, pid: int, value: str) -> None:
        data = value.encode("utf-16-le")
        self.streams[f"__substg1.0_{pid:04X}{PT_UNICODE:04X}"] = data
        self._variable(pid, PT_UNICODE, len(data) + 2)  # the size counts the terminating NUL

    def binary(self, pid: int, data: bytes) -> None:
        self.streams[f"__substg1.0_{pid:04X}{PT_BINARY:04X}"] = data
        self._variable(pid, PT_BINARY, len(data))

    def long(self, pid: int, value: int) -> None:
        self.entries.append(
            struct.pack("<IIi4x", pid << 16 | PT_LONG, PROP_READABLE_WRITABLE, value)
        )

    def time(self, pid: int, value: datetime) -> None:
        ticks = int((value - FILETIME_EPOCH).total_seconds()) * 10_000_000
        self.entries.append(
            struct.pack("<IIQ", pid << 16 | PT_SYSTIME, PROP_READABLE_WRITABLE, ticks)
        )

    def _variable(self, pid: int, ptype: int, size: int) -> None:
        self.entries.append(
            struct.pack("<IIII", pid << 16 | ptype, PROP_READABLE_WRITABLE, size, 0)
        )

    def write(self, writer, storage: str = "") -> None:
        prefix = f"{storage}/" if storage else ""
        for name, data in self.streams.items():
            writer.addEntry(prefix + name, data)
        writer.addEntry(prefix + "__properties_version1.0", self.header + b"".join(self.entries))


def write_outlook_msg(
    path: Path,
    *,
    subject: str = "Quote for 40 units",
    body: str = "Hello Sam,\r\nthe quote is attached.\r\n",
    html: bytes | None = None,
    transport_headers: str | None = None,
    sender_name: str = "",
    sent_at: datetime | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    message_class: str = "IPM.Note",
) -> Path:
    """A .msg with the given properties; attachments are (filename, mime type, bytes)."""
    from extract_msg import OleWriter

    writer = OleWriter()
    # Top level: 8 reserved bytes, next recipient id, next attachment id, recipient count,
    # attachment count, 8 reserved bytes.
    top = _Properties(b"\0" * 8 + struct.pack("<IIII", 0, len(attachments), 0, len(attachments)))
    top.header += b"\0" * 8
    top.string(MESSAGE_CLASS, message_class)
    top.string(SUBJECT, subject)
    top.string(BODY, body)
    if html is not None:
        top.binary(HTML, html)
    if transport_headers is not None:
        top.string(TRANSPORT_HEADERS, transport_headers)
    if sender_name:
        top.string(SENDER_NAME, sender_name)
    if sent_at is not None:
        top.time(CLIENT_SUBMIT_TIME, sent_at)
    top.write(writer)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("__substg1.0_00020102", "__substg1.0_00030102", "__substg1.0_00040102"):
        writer.addEntry(f"__nameid_version1.0/{stream}", b"")
    for n, (filename, mime_type, data) in enumerate(attachments):
        storage = f"__attach_version1.0_#{n:08X}"
        writer.addEntry(storage, storage=True)
        props = _Properties(b"\0" * 8)
        props.long(ATTACH_METHOD, 1)  # by value: the bytes are in the attachment's data stream
        props.binary(ATTACH_DATA, data)
        props.string(ATTACH_LONG_FILENAME, filename)
        props.string(ATTACH_MIME_TAG, mime_type)
        props.write(writer, storage)
    writer.write(str(path))
    return path
