"""One base exception for the capture app; subclasses say whether the input or we are at fault."""

from __future__ import annotations

from capture.textsafe import clean_text


class CaptureError(Exception):
    """Base of every capture error."""


class InputRejected(CaptureError):
    """The input is bad (user error): reject with a reason code, log at info, never retry."""

    def __init__(self, code: str, detail: str = "") -> None:
        detail = clean_text(detail)  # it may quote the input, and ends in reason_detail
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class UnparseableMessage(InputRejected):
    """No message can be made of the bytes (empty, not mail, or the parser gave up)."""


class MessageTooLarge(InputRejected):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__("too_large", f"{size} bytes > limit {limit}")
        self.size = size
        self.limit = limit


class SenderNotAllowed(InputRejected):
    pass


class StoreUnavailable(CaptureError):
    """We are broken (database or storage down): the caller should answer 'try again later'."""
