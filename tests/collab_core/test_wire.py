"""wire.decode: everything a peer can send either validates or gets a coded ProtocolError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab_core import wire
from collab_core.errors import ErrorCode, ProtocolError


def code_of(frame: str | bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        wire.decode(frame)
    return info.value.code


def test_valid_op_is_normalized() -> None:
    msg = wire.decode(json.dumps({"type": "op", "path": "a.py", "rev": 0, "seq": 1, "op": [2, 3, "x", "y"]}))
    assert msg["op"] == [5, "xy"]


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{", ErrorCode.BAD_JSON),
        (b"\xff\xfe", ErrorCode.BAD_JSON),
        ("[]", ErrorCode.BAD_MESSAGE),
        ('{"type": 3}', ErrorCode.BAD_MESSAGE),
        ('{"type": "launch_missiles"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "op", "path": "a", "rev": "0", "seq": 1, "op": []}', ErrorCode.BAD_MESSAGE),
        ('{"type": "op", "path": "a", "rev": true, "seq": 1, "op": []}', ErrorCode.BAD_MESSAGE),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 0, "op": []}', ErrorCode.BAD_MESSAGE),
        ('{"type": "op", "path": "a", "rev": -1, "seq": 1, "op": []}', ErrorCode.BAD_MESSAGE),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 1, "op": [1.5]}', ErrorCode.INVALID_OP),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 1, "op": [""]}', ErrorCode.INVALID_OP),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 1, "op": ["\\u0000"]}', ErrorCode.INVALID_OP),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 1, "op": ["\\ud800"]}', ErrorCode.INVALID_OP),
        ('{"type": "op", "path": "a", "rev": 0, "seq": 1, "op": {"x": 1}}', ErrorCode.BAD_MESSAGE),
        ('{"type": "op", "path": "/etc/passwd", "rev": 0, "seq": 1, "op": []}', ErrorCode.BAD_PATH),
        ('{"type": "op", "path": "a/../../b", "rev": 0, "seq": 1, "op": []}', ErrorCode.BAD_PATH),
        ('{"type": "op", "path": "a\\\\b", "rev": 0, "seq": 1, "op": []}', ErrorCode.BAD_PATH),
        ('{"type": "hello", "protocol": 1, "name": "", "clientId": "abcdefgh"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "hello", "protocol": 1, "name": "a", "clientId": "short"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "join", "room": "../x", "secret": "s"}', ErrorCode.NO_SUCH_ROOM),
        ('{"type": "presence", "path": "a", "rev": 0, "ranges": [[1]]}', ErrorCode.BAD_MESSAGE),
        ('{"type": "presence", "path": "a", "rev": 0, "ranges": [[-1, 2]]}', ErrorCode.BAD_MESSAGE),
        ('{"type": "ping", "id": {"nested": 1}}', ErrorCode.BAD_MESSAGE),
        ("[" * 100000 + "]" * 100000, ErrorCode.BAD_JSON),
    ],
)
def test_bad_frames_get_stable_codes(frame: str, code: ErrorCode) -> None:
    assert code_of(frame) == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    st.sampled_from(sorted(wire.SCHEMA)),
    st.dictionaries(
        st.sampled_from(["path", "rev", "seq", "op", "ranges", "name", "id", "text", "since"]), json_values
    ),
)
def test_decode_never_raises_anything_else(kind: str, fields: dict[str, object]) -> None:
    frame = json.dumps(dict(fields, type=kind))
    try:
        wire.decode(frame)
    except ProtocolError:
        pass


def test_error_message_never_echoes_input() -> None:
    out = json.loads(wire.error(ErrorCode.BAD_MESSAGE))
    assert out == {
        "type": "error",
        "code": "bad_message",
        "message": "message does not match the protocol schema",
    }
