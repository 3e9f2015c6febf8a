"""The hub's orjson codec accepts, refuses and writes exactly what :mod:`collab_core.wire` does
with the standard ``json`` module (the reference), on frames built to hit where they differ."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import wire
from collab_core.errors import ProtocolError
from collab_server import codec
from tests.support.json_cases import ODD_VALUES

MESSAGES = [
    '{"type":"op","path":"a.txt","rev":%s,"seq":1,"op":[3,"x"]}',
    '{"type":"op","path":"a.txt","rev":0,"seq":1,"op":[%s]}',
    '{"type":"op","path":"a.txt","rev":0,"seq":1,"op":[2,%s,-1]}',
    '{"type":"presence","path":"a.txt","rev":0,"ranges":[[%s,2]]}',
    '{"type":"ping","id":%s}',
    '{"type":"hello","protocol":1,"name":%s,"clientId":"abcdefgh"}',
    '{"type":"open","path":"a.txt","id":1,"extra":%s}',
    "%s",
]


def outcome(decode: Any, frame: str | bytes) -> tuple[str, str]:
    try:
        return "ok", repr(decode(frame, max_op_components=64))
    except ProtocolError as exc:
        return "error", f"{exc.code} {exc.echo}"


@settings(max_examples=600, deadline=None)
@given(
    template=st.sampled_from(MESSAGES),
    value=st.one_of(
        st.sampled_from(ODD_VALUES),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats(allow_nan=False).map(json.dumps),
        st.text(max_size=8).map(lambda t: json.dumps(t, ensure_ascii=False)),
    ),
    as_bytes=st.booleans(),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=80)),
)
def test_decode_agrees_with_the_standard_library(
    template: str, value: str, as_bytes: bool, cut: int | None
) -> None:
    text = template % value
    if cut is not None:
        text = text[:cut]  # malformed too
    frame: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(codec.decode, frame) == outcome(wire.decode, frame)


def test_bytes_that_are_not_utf8_fail_the_connection() -> None:
    """The hub reads frames as bytes: one that is not UTF-8 is not a message refused (as
    ``wire`` refuses it, bad JSON) but a text frame the connection fails on (1007)."""
    for frame in (b"\xff\xfe", b'{"type":"ping","id":"\xc3"}', b'"\xed\xa0\x80"'):
        with pytest.raises(codec.NotUtf8):
            codec.decode(frame)
        assert outcome(wire.decode, frame)[0] == "error"
    # the same texts as str (what a str can hold) are refused as before
    assert outcome(codec.decode, "\udcff") == outcome(wire.decode, "\udcff")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(min_value=-(2**70), max_value=2**70)
            | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
            ),
            max_leaves=12,
        ),
        max_size=5,
    )
)
def test_encode_writes_what_the_standard_library_writes(msg: dict[str, Any]) -> None:
    assert codec.encode(msg) == wire.encode(msg)
