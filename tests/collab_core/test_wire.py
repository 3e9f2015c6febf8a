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


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "hello", "protocol": 1, "name": "a", "clientId": "abcdefgh", "user": "u_-9" * 16},
        {"type": "undo", "path": "a.py", "key": 1, "id": 1},
        {"type": "redo", "path": "a.py", "key": 2**53},
        {"type": "history", "path": "a.py"},
        {"type": "history", "path": "a.py", "before": 0, "limit": 500},
        {"type": "blame", "path": "a.py", "start": 3, "end": 3},
        {"type": "blame", "path": "a.py", "end": 10**9},
        {"type": "revision", "path": "a.py", "rev": 2**53},
    ],
)
def test_history_messages_and_hello_user_validate(msg: dict[str, object]) -> None:
    assert wire.decode(json.dumps(msg)) == msg


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
        (
            '{"type": "hello", "protocol": 1, "name": "a", "clientId": "abcdefgh", "user": "short"}',
            ErrorCode.BAD_MESSAGE,
        ),
        (
            '{"type": "hello", "protocol": 1, "name": "a", "clientId": "abcdefgh", "user": "a/b/c/d/e"}',
            ErrorCode.BAD_MESSAGE,
        ),
        (
            '{"type": "hello", "protocol": 1, "name": "a", "clientId": "abcdefgh", "user": 12345678}',
            ErrorCode.BAD_MESSAGE,
        ),
        ('{"type": "undo"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "undo", "path": "a"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "undo", "path": "a", "key": 0}', ErrorCode.BAD_MESSAGE),
        ('{"type": "undo", "path": "a", "key": -1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "undo", "path": "a", "key": "1"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "redo", "path": "a", "key": 9007199254740993}', ErrorCode.BAD_MESSAGE),
        ('{"type": "redo", "path": "../a", "key": 1}', ErrorCode.BAD_PATH),
        ('{"type": "history", "path": "a", "limit": 0}', ErrorCode.BAD_MESSAGE),
        ('{"type": "history", "path": "a", "limit": 501}', ErrorCode.BAD_MESSAGE),
        ('{"type": "history", "path": "a", "limit": 1000000000}', ErrorCode.BAD_MESSAGE),
        ('{"type": "history", "path": "a", "before": -1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "history", "path": "a", "before": "x"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "history", "path": "a", "before": 1.5}', ErrorCode.BAD_MESSAGE),
        ('{"type": "blame", "path": "a", "start": -1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "blame", "path": "a", "start": 5, "end": 4}', ErrorCode.BAD_MESSAGE),
        ('{"type": "blame", "path": "a", "end": true}', ErrorCode.BAD_MESSAGE),
        ('{"type": "revision", "path": "a"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "revision", "path": "a", "rev": -1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "revision", "path": "a", "rev": 9007199254740993}', ErrorCode.BAD_MESSAGE),
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


# -- what is echoed: JSON-safe ids only ---------------------------------------------


def refused(frame: str, **kwargs: int) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        wire.decode(frame, **kwargs)
    return info.value


@pytest.mark.parametrize(
    "rid",
    [
        "\\ud800",  # a lone surrogate: UTF-8 cannot carry it back
        "a\\udfffb",
        "a\\u0000b",  # NUL
        "x" * 65,
    ],
)
def test_an_id_that_cannot_be_echoed_is_refused_and_not_echoed(rid: str) -> None:
    exc = refused('{"type": "open", "path": "a.txt", "id": "' + rid + '"}')
    assert exc.code == ErrorCode.BAD_MESSAGE
    assert exc.echo == {"path": "a.txt"}
    assert "\ud800" not in json.dumps(exc.echo)


@pytest.mark.parametrize("rid", [2**53 + 1, -(2**53) - 1, 1.5, True, [1], {"a": 1}])
def test_ids_that_are_not_json_safe_integers_or_strings_are_refused(rid: object) -> None:
    exc = refused(json.dumps({"type": "ping", "id": rid}))
    assert exc.code == ErrorCode.BAD_MESSAGE
    assert exc.echo == {}


@pytest.mark.parametrize("rid", [0, 2**53, -(2**53), "", "x" * 64, "é😀 \t"])
def test_json_safe_ids_pass_and_encode(rid: object) -> None:
    msg = wire.decode(json.dumps({"type": "ping", "id": rid}))
    assert msg["id"] == rid
    wire.encode({"type": "pong", "id": msg["id"]}).encode("utf-8")


def test_errors_echo_the_valid_id_seq_and_path_of_a_refused_op() -> None:
    exc = refused(json.dumps({"type": "op", "path": "a.txt", "rev": 0, "seq": 7, "op": [1.5], "id": "r1"}))
    assert exc.code == ErrorCode.INVALID_OP
    assert exc.echo == {"id": "r1", "seq": 7, "path": "a.txt"}
    exc = refused(json.dumps({"type": "op", "path": "../x", "rev": 0, "seq": "7", "op": []}))
    assert exc.code == ErrorCode.BAD_MESSAGE
    assert exc.echo == {}
    assert wire.refers_to_frame("{") == {}
    assert wire.refers_to_frame('{"type":"op","seq":3,"id":"\\ud800"}') == {"seq": 3}


# -- bounded work per message ---------------------------------------------------------


def test_an_op_with_more_components_than_the_limit_is_too_large() -> None:
    frame = json.dumps({"type": "op", "path": "a", "rev": 0, "seq": 3, "op": ["a"] * 101})
    exc = refused(frame, max_op_components=100)
    assert exc.code == ErrorCode.TOO_LARGE
    assert exc.echo == {"seq": 3, "path": "a"}
    ok = json.dumps({"type": "op", "path": "a", "rev": 0, "seq": 3, "op": [1, "a"] * 50})
    assert wire.decode(ok, max_op_components=100)["op"] == [1, "a"] * 50


def test_a_frame_of_one_char_inserts_decodes_into_one_component() -> None:
    frame = json.dumps({"type": "op", "path": "a", "rev": 0, "seq": 1, "op": ["a"] * 262_000})
    assert wire.decode(frame)["op"] == ["a" * 262_000]


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=3000))
def test_encode_string_is_the_json_string_encode_writes(text: str) -> None:
    assert wire.encode_string(text) == json.dumps(text, ensure_ascii=False).encode("utf-8")


def test_encode_string_of_a_text_longer_than_its_pieces() -> None:
    text = ('é😀 "q" \\ \x01\n' * 200_000)[: 3 * wire._STRING_PIECE + 5]
    assert wire.encode_string(text) == json.dumps(text, ensure_ascii=False).encode("utf-8")


# -- display names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("Ada", "Ada"),
        ("  Ada Lovelace  ", "Ada Lovelace"),
        ("\u202eecila\u202c", "ecila"),  # right-to-left override
        ("Bob\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "Bob"),  # isolates and marks
        ("E\x1b[31mve\x07", "E[31mve"),  # terminal escapes lose their ESC and BEL
        ("li\u200bne\u2028two\u2029", "linetwo"),  # zero width space, line separators
        ("\ufeffZoë", "Zoë"),
        ("Z" + "\u0301" * 20 + "a", "Z" + "\u0301" * wire.MAX_COMBINING + "a"),
        ("👩\u200d💻 Ana", "👩\u200d💻 Ana"),  # ZWJ sequences stay
        ("مهرداد\u200cی", "مهرداد\u200cی"),  # ZWNJ stays
    ],
)
def test_display_names_lose_control_bidi_and_invisible_characters(raw: str, shown: str) -> None:
    msg = wire.decode(json.dumps({"type": "hello", "protocol": 1, "name": raw, "clientId": "abcdefgh"}))
    assert msg["name"] == shown


def test_a_name_with_nothing_visible_is_refused() -> None:
    frame = json.dumps({"type": "hello", "protocol": 1, "name": "\u202e \u200b", "clientId": "abcdefgh"})
    assert refused(frame).code == ErrorCode.BAD_MESSAGE


def test_room_names_are_cleaned_the_same_way() -> None:
    msg = wire.decode(json.dumps({"type": "create_room", "name": "\u202eplans\u202c\n"}))
    assert msg["name"] == "plans"


@given(st.text(max_size=80))
def test_display_name_never_keeps_a_bidi_control_and_is_bounded(raw: str) -> None:
    shown = wire.display_name(raw)
    assert len(shown) <= wire.MAX_NAME
    assert not set(shown) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in shown)


@given(st.text(max_size=200) | st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_bad_text_finds_nul_and_surrogates_exactly(text: str) -> None:
    assert wire.bad_text(text) == any(ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in text)


@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=50))
def test_shareable_replaces_what_bad_text_finds_one_for_one(text: str) -> None:
    out = wire.shareable(text)
    assert not wire.bad_text(out) and len(out) == len(text)
    for before, after in zip(text, out, strict=True):
        bad = before == "\x00" or 0xD800 <= ord(before) <= 0xDFFF
        assert after == ("\ufffd" if bad else before)
    if not wire.bad_text(text):
        assert out is text  # (nothing copied on the keystroke's way)


def test_bad_text_in_a_large_paste() -> None:
    paste = ("x" * 99 + "\n") * 700
    assert not wire.bad_text(paste) and not wire.bad_text(paste + "é😀")
    assert wire.bad_text(paste + "\x00") and wire.bad_text("é" + paste + "\ud800")
