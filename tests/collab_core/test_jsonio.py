""":mod:`collab_core.jsonio` reads exactly what ``json.loads`` reads and writes what ``json.dumps``
writes compactly, on texts and values built to hit where orjson and ``json`` differ."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import jsonio
from tests.support.json_cases import ODD_VALUES

# an LSP message or a hub frame with one value in it, and bare values
TEMPLATES = [
    '{"jsonrpc":"2.0","id":%s,"result":null}',
    '{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":'
    '{"uri":"file:///a.py","version":%s},"contentChanges":[{"text":"x"}]}}',
    '{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"contentChanges":[{"text":%s}]}}',
    '{"type":"op","path":"a.txt","rev":3,"op":[2,%s,-1]}',
    '[{"a":[%s]},1]',
    " %s\n",
    "%s",
]


def outcome(loads: Any, data: str | bytes) -> tuple[str, str]:
    try:
        return "ok", repr(loads(data))
    except Exception as exc:  # (what json raises: the same class either way)
        return "error", type(exc).__name__


@settings(max_examples=800, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    value=st.one_of(
        st.sampled_from(ODD_VALUES),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats().map(json.dumps),
        st.text(max_size=8).map(lambda t: json.dumps(t, ensure_ascii=False)),
        st.text(max_size=8).map(json.dumps),  # escapes, lone surrogates' among them
    ),
    form=st.sampled_from(["str", "utf-8", "utf-8-sig", "utf-16"]),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=120)),
)
def test_loads_agrees_with_the_standard_library(
    template: str, value: str, form: str, cut: int | None
) -> None:
    text = template % value
    if cut is not None:
        text = text[:cut]  # malformed too
    data: str | bytes = text if form == "str" else text.encode(form, "surrogatepass")
    assert outcome(jsonio.loads, data) == outcome(json.loads, data)


def test_loads_refuses_what_json_refuses() -> None:
    for data in (b"\xff\xfe\xff", b'{"a":"\xc3"}', "", "\ufeff{}", "{'a': 1}", "[1,]"):
        assert outcome(jsonio.loads, data) == outcome(json.loads, data)
        assert outcome(jsonio.loads, data)[0] == "error"
    # (json reads bytes with "surrogatepass": a lone surrogate's UTF-8 is read, not refused)
    assert jsonio.loads(b'"\xed\xa0\x80"') == json.loads(b'"\xed\xa0\x80"') == "\ud800"


def reference_dumps(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # (UTF-8 cannot hold it: escaped)
        return json.dumps(value, separators=(",", ":")).encode()
    return text.encode()


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(st.characters(blacklist_categories=()), max_size=10),  # lone surrogates too
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5) | st.booleans(), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(JSONISH)
def test_dumps_writes_what_the_standard_library_writes(value: Any) -> None:
    assert outcome(jsonio.dumps, value) == outcome(reference_dumps, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=6))
def test_dumps_writes_floats_that_read_back_the_same(values: list[float]) -> None:
    # (spelled as orjson spells them: 0.00001 for json's 1e-05, the same number)
    back = json.loads(jsonio.dumps({"f": values}))["f"]
    assert [math.copysign(1, x) for x in back] == [math.copysign(1, x) for x in values]
    assert back == values


def test_dumps_writes_null_for_what_json_cannot_spell() -> None:
    assert jsonio.dumps([math.nan, math.inf, -math.inf]) == b"[null,null,null]"


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def test_dumps_calls_default_as_json_does() -> None:
    def default(obj: Any) -> Any:
        if isinstance(obj, Point):
            return {"x": obj.x}
        raise TypeError(type(obj).__name__)

    value = {"p": [Point(1), {"q": Point(2)}], "é": "😀"}
    assert jsonio.dumps(value, default=default) == reference_dumps(
        {"p": [{"x": 1}, {"q": {"x": 2}}], "é": "😀"}
    )
    with pytest.raises(TypeError):
        jsonio.dumps({"s": {1, 2}}, default=default)
    with pytest.raises(TypeError):
        jsonio.dumps({"p": Point(1)})
