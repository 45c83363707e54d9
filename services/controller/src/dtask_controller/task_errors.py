"""The field errors of a rejected submission as a trailer that always fits gRPC's metadata limit."""

from __future__ import annotations

from collections.abc import Sequence

from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.models import FieldError

#: Serialized TaskErrors at most this big: base64 makes it 4/3 larger, and the whole trailer (with the
#: status message) must stay under the 8 KiB that gRPC clients accept without risk.
MAX_TRAILER_BYTES = 3 * 1024
MAX_TEXT = 200  # characters of a task name, field or message


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """text, or its first limit characters and how many were cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def trailer(errors: Sequence[FieldError]) -> bytes:
    """A serialized TaskErrors holding the first errors that fit, and how many were left out."""
    out = pb.TaskErrors()
    size = 0
    for i, e in enumerate(errors):
        item = convert.field_error_to_pb(FieldError(cut(e.field), cut(e.message), e.index, cut(e.task_name)))
        n = item.ByteSize() + 3  # tag and length
        if size + n > MAX_TRAILER_BYTES:
            out.omitted = len(errors) - i
            break
        out.errors.append(item)
        size += n
    return out.SerializeToString()
