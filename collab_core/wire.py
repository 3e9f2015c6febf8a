"""The wire protocol: decoding and validating client messages, encoding replies.

Version 1, specified in ``docs/protocol.md``.  Every frame is one JSON
object with a ``type``.  :func:`decode` never raises anything but
:class:`~collab_core.errors.ProtocolError`, whose code is what the client
is told; a message that passes it has exactly the fields and types the
schema says, so the hub never touches unchecked peer input.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from . import ops
from .errors import MESSAGES, ErrorCode, ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "bad_text",
    "checked",
    "decode",
    "display_name",
    "encode",
    "encode_string",
    "error",
    "refers_to",
    "refers_to_frame",
    "safe_id",
    "shareable",
    "valid_path",
]

PROTOCOL_VERSION = 1

MAX_NAME = 64
MAX_ROOM_NAME = 200
MAX_PATH = 1024
MAX_RANGES = 64
MAX_ID = 64
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
ROOM_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# What a display name loses before anyone sees it: control characters (C0, C1,
# line and paragraph separators), the bidirectional marks, embeddings,
# overrides and isolates that can make a name read as something else (Unicode
# TR9; "Trojan Source", CVE-2021-42574), invisible characters (zero width
# space, word joiner and invisible operators, BOM, interlinear annotations,
# tag characters) and lone surrogates.  ZWJ and ZWNJ stay: emoji sequences
# and several scripts need them.
_NAME_STRIP_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)
#: combining marks kept on one character (more only stack upwards: "Zalgo" text)
MAX_COMBINING = 4
_BAD_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")

# message type -> {field: (kind, required)}
_INT, _STR, _LIST, _ANY = "int", "str", "list", "any"
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "hello": {
        "protocol": (_INT, True),
        "name": (_STR, True),
        "clientId": (_STR, True),
        "user": (_STR, False),
    },
    "create_room": {"name": (_STR, False), "token": (_STR, False)},
    "join": {"room": (_STR, True), "secret": (_STR, True)},
    "leave": {},
    "list_documents": {},
    "create_document": {"path": (_STR, True), "text": (_STR, False)},
    "open": {"path": (_STR, True), "since": (_INT, False)},
    "close": {"path": (_STR, True)},
    "digest": {"path": (_STR, True)},
    "op": {"path": (_STR, True), "rev": (_INT, True), "seq": (_INT, True), "op": (_LIST, True)},
    "presence": {"path": (_STR, True), "rev": (_INT, True), "ranges": (_LIST, True)},
    "ping": {},
    # history (docs/protocol.md, "History")
    "undo": {"path": (_STR, True), "key": (_INT, True)},
    "redo": {"path": (_STR, True), "key": (_INT, True)},
    "history": {"path": (_STR, True), "before": (_INT, False), "limit": (_INT, False)},
    "blame": {"path": (_STR, True), "start": (_INT, False), "end": (_INT, False)},
    "revision": {"path": (_STR, True), "rev": (_INT, True)},
    # the owner's controls (docs/protocol.md, "Owners")
    "kick": {"participant": (_STR, True)},
    "set_role": {"participant": (_STR, True), "role": (_STR, True)},
    "rotate_invites": {},
    "delete_room": {},
    # runs for the room (docs/protocol.md, "Runs"): relayed to one participant
    "run_request": {"participant": (_STR, True), "requestId": (_STR, True), "command": (_STR, True)},
    "run_answer": {
        "participant": (_STR, True),
        "requestId": (_STR, True),
        "accepted": (_ANY, True),
        "path": (_STR, False),
    },
    # the runner tells the room how its run goes (broadcast to the others)
    "run_status": {
        "path": (_STR, True),
        "state": (_STR, True),
        "command": (_STR, True),
        "exitCode": (_ANY, False),
        "stopped": (_ANY, False),
        "startedAt": (_ANY, False),
        "endedAt": (_ANY, False),
    },
}

#: the roles the owner may give a participant (nobody is made an owner)
ASSIGNABLE_ROLES = ("editor", "viewer")
PARTICIPANT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

MAX_INT = 2**53  # JSON-safe integers only

#: changes a ``history`` reply holds by default, and at most
HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500


def bad_text(text: str) -> bool:
    """Whether *text* holds NUL or a surrogate (U+D800..U+DFFF, which a Python string holds
    only alone: UTF-8 cannot encode it).  PostgreSQL text cannot hold NUL, and UTF-8 no
    surrogate: both are refused at the edge so they never reach the store.

    At C speed (a 64 KiB paste: 1 us if ASCII, 60 us if not, where a regular expression took
    450 us): NUL by ``in``, a surrogate by UTF-8 refusing it, which only text that is not ASCII
    can hold.
    """
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def shareable(text: str) -> str:
    """*text* with each character :func:`bad_text` refuses (NUL, a lone surrogate) replaced by
    U+FFFD, one code point for one: offsets in code points stay where they were."""
    return _BAD_CHAR.sub("\ufffd", text) if bad_text(text) else text


def decode(frame: str | bytes, *, max_op_components: int | None = None) -> dict[str, Any]:
    """Parse and validate one client frame.  Raises :class:`ProtocolError`.

    The work is linear in the frame's size.  An ``op`` of more than
    *max_op_components* components is refused (``too_large``) before it is
    looked at further.  When the frame is a JSON object, the error's
    :attr:`~collab_core.errors.ProtocolError.echo` holds what of its ``id``,
    ``seq`` and ``path`` may be sent back (:func:`refers_to`).
    """
    return checked(_parse(frame), max_op_components=max_op_components)


def checked(msg: Any, *, max_op_components: int | None = None) -> dict[str, Any]:
    """*msg*, a frame's JSON value parsed by the standard ``json`` module or one that
    parses exactly as it does, validated as :func:`decode` does.  Raises :class:`ProtocolError`."""
    try:
        _validate(msg, max_op_components)
    except ProtocolError as exc:
        exc.echo = refers_to(msg)
        raise
    return msg  # type: ignore[no-any-return]


def _parse(frame: str | bytes) -> Any:
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.BAD_JSON) from None
    try:
        return json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON) from None


def _validate(msg: Any, max_op_components: int | None) -> None:
    if not isinstance(msg, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message needs a string 'type'")
    schema = SCHEMA.get(kind)
    if schema is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE)
    rid = msg.get("id")
    if rid is not None and not safe_id(rid):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'id' must be an integer or a short string")
    for name, (want, required) in schema.items():
        value = msg.get(name)
        if value is None:
            if required:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{name}' is required")
            continue
        if want == _INT:
            if type(value) is not int or not -MAX_INT <= value <= MAX_INT:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{name}' must be an integer")
        elif want == _STR:
            if type(value) is not str:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{name}' must be a string")
        elif want == _LIST and type(value) is not list:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{name}' must be a list")
    if kind == "op":
        _check_op(msg, max_op_components)
    else:
        _CHECKS.get(kind, _no_check)(msg)


def _no_check(msg: dict[str, Any]) -> None:
    pass


def safe_id(value: Any) -> bool:
    """May *value* be a request ``id``, sent back as it came?  An integer JSON
    holds exactly, or a string of at most :data:`MAX_ID` characters that
    UTF-8 can carry (no lone surrogates) and PostgreSQL could store (no NUL)."""
    if type(value) is int:
        return -MAX_INT <= value <= MAX_INT
    return type(value) is str and len(value) <= MAX_ID and not bad_text(value)


def refers_to(msg: Any) -> dict[str, Any]:
    """The ``id``, ``seq`` and ``path`` of a client message that are safe to echo in
    its error, so the client can match it; whatever is not valid is left out."""
    if not isinstance(msg, dict):
        return {}
    out: dict[str, Any] = {}
    rid, seq, path = msg.get("id"), msg.get("seq"), msg.get("path")
    if rid is not None and safe_id(rid):
        out["id"] = rid
    # seq is an integer or nothing: a string here is client input, never echoed
    if type(seq) is int and -MAX_INT <= seq <= MAX_INT:
        out["seq"] = seq
    if type(path) is str and valid_path(path):
        out["path"] = path
    return out


def refers_to_frame(frame: str | bytes) -> dict[str, Any]:
    """:func:`refers_to` of a frame not otherwise decoded (one refused for the rate, say)."""
    try:
        return refers_to(_parse(frame))
    except ProtocolError:
        return {}


def display_name(name: str, max_length: int = MAX_NAME) -> str:
    """*name* as others may see it: without control, bidirectional-override and
    invisible characters, at most :data:`MAX_COMBINING` combining marks on a
    character, no space at either end, at most *max_length* characters."""
    name = _NAME_STRIP_RE.sub("", name)
    if not name.isascii():
        kept: list[str] = []
        marks = 0
        for ch in name:
            if unicodedata.category(ch) in ("Mn", "Me"):
                marks += 1
                if marks > MAX_COMBINING:
                    continue
            else:
                marks = 0
            kept.append(ch)
        name = "".join(kept)
    return name.strip()[:max_length].strip()


def _check_hello(msg: dict[str, Any]) -> None:
    name = msg["name"]
    if not 1 <= len(name) <= MAX_NAME or bad_text(name):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'name' must be 1 to {MAX_NAME} characters")
    shown = display_name(name)
    if not shown:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'name' must have a visible character")
    msg["name"] = shown
    if not CLIENT_ID_RE.fullmatch(msg["clientId"]):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'clientId' must be 8 to 64 of [A-Za-z0-9_-]")
    user = msg.get("user")
    if user is not None and not CLIENT_ID_RE.fullmatch(user):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'user' must be 8 to 64 of [A-Za-z0-9_-]")


def _check_create_room(msg: dict[str, Any]) -> None:
    name = msg.get("name")
    if name is not None:
        if len(name) > MAX_ROOM_NAME or bad_text(name):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'name' must be at most {MAX_ROOM_NAME} characters")
        msg["name"] = display_name(name, MAX_ROOM_NAME)


def _check_join(msg: dict[str, Any]) -> None:
    if not ROOM_ID_RE.fullmatch(msg["room"]):
        raise ProtocolError(ErrorCode.NO_SUCH_ROOM)
    if not SECRET_RE.fullmatch(msg["secret"]):
        raise ProtocolError(ErrorCode.BAD_INVITE)


def _check_path(msg: dict[str, Any]) -> None:
    if not valid_path(msg["path"]):
        raise ProtocolError(ErrorCode.BAD_PATH)


def _check_create_document(msg: dict[str, Any]) -> None:
    _check_path(msg)
    text = msg.get("text")
    if text is not None and bad_text(text):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "text must not contain NUL or lone surrogates")


def _check_open(msg: dict[str, Any]) -> None:
    _check_path(msg)
    since = msg.get("since")
    if since is not None and since < 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'since' must not be negative")


def _check_op(msg: dict[str, Any], max_components: int | None) -> None:
    _check_path(msg)
    if msg["rev"] < 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'rev' must not be negative")
    if msg["seq"] < 1:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'seq' must be positive")
    if max_components is not None and len(msg["op"]) > max_components:
        # before normalizing: the work an op causes grows with its components
        raise ProtocolError(ErrorCode.TOO_LARGE)
    try:
        op = ops.check(msg["op"])
    except ops.InvalidOp:
        raise ProtocolError(ErrorCode.INVALID_OP) from None
    for c in op:
        if type(c) is str and bad_text(c):
            raise ProtocolError(ErrorCode.INVALID_OP, "inserted text must not contain NUL or lone surrogates")
        elif type(c) is int and not -MAX_INT <= c <= MAX_INT:
            raise ProtocolError(ErrorCode.INVALID_OP)
    msg["op"] = op


def _check_presence(msg: dict[str, Any]) -> None:
    _check_path(msg)
    ranges = msg["ranges"]
    if len(ranges) > MAX_RANGES:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"at most {MAX_RANGES} ranges")
    for r in ranges:
        if not (
            type(r) is list
            and len(r) == 2
            and type(r[0]) is int
            and type(r[1]) is int
            and 0 <= r[0] <= MAX_INT
            and 0 <= r[1] <= MAX_INT
        ):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "a range is [anchor, head], two non-negative integers")


def _check_toggle(msg: dict[str, Any]) -> None:
    _check_path(msg)
    if msg["key"] < 1:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'key' must be positive")


def _check_history(msg: dict[str, Any]) -> None:
    _check_path(msg)
    before = msg.get("before")
    if before is not None and before < 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'before' must not be negative")
    limit = msg.get("limit")
    if limit is not None and not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'limit' must be 1 to {MAX_HISTORY_LIMIT}")


def _check_blame(msg: dict[str, Any]) -> None:
    _check_path(msg)
    start, end = msg.get("start"), msg.get("end")
    if start is not None and start < 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'start' must not be negative")
    if end is not None and end < (start or 0):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'end' must not be before 'start'")


def _check_revision(msg: dict[str, Any]) -> None:
    _check_path(msg)
    if msg["rev"] < 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'rev' must not be negative")


#: the longest command line one participant may ask another to run
MAX_RUN_COMMAND = 4096
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_run_message(msg: dict[str, Any]) -> None:
    _check_participant(msg)
    if not REQUEST_ID_RE.fullmatch(msg["requestId"]):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'requestId' must be 1 to 64 of [A-Za-z0-9_-]")
    command = msg.get("command")
    if command is not None and (len(command) > MAX_RUN_COMMAND or bad_text(command)):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'command' is too long or not text")
    if "accepted" in msg and not isinstance(msg["accepted"], bool):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'accepted' must be true or false")
    path = msg.get("path")
    if path is not None and not (valid_path(path) and is_run_path(path)):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'path' must be a run's output document")


#: the states a run's status may say (docs/protocol.md, "Runs")
RUN_STATES = ("running", "ended")


def _check_run_status(msg: dict[str, Any]) -> None:
    _check_path(msg)
    if not is_run_path(msg["path"]):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'path' must be a run's output document")
    if msg["state"] not in RUN_STATES:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'state' must be 'running' or 'ended'")
    command = msg["command"]
    if len(command) > MAX_RUN_COMMAND or bad_text(command):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'command' is too long or not text")
    code = msg.get("exitCode")
    if code is not None and (type(code) is not int or not -(1 << 31) <= code < 1 << 31):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'exitCode' must be an integer or null")
    if "stopped" in msg and not isinstance(msg["stopped"], bool):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'stopped' must be true or false")
    for key in ("startedAt", "endedAt"):
        if key not in msg:
            continue
        at = msg[key]
        if not isinstance(at, (int, float)) or isinstance(at, bool) or not 0 <= at < 1e11:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{key}' must be a time in seconds")


def _check_participant(msg: dict[str, Any]) -> None:
    if not PARTICIPANT_RE.fullmatch(msg["participant"]):
        raise ProtocolError(ErrorCode.NO_SUCH_PARTICIPANT)


def _check_set_role(msg: dict[str, Any]) -> None:
    _check_participant(msg)
    if msg["role"] not in ASSIGNABLE_ROLES:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'role' must be 'editor' or 'viewer'")


_CHECKS = {
    "hello": _check_hello,
    "create_room": _check_create_room,
    "join": _check_join,
    "create_document": _check_create_document,
    "open": _check_open,
    "close": _check_path,
    "digest": _check_path,
    "presence": _check_presence,
    "undo": _check_toggle,
    "redo": _check_toggle,
    "history": _check_history,
    "blame": _check_blame,
    "revision": _check_revision,
    "kick": _check_participant,
    "run_request": _check_run_message,
    "run_answer": _check_run_message,
    "run_status": _check_run_status,
    "set_role": _check_set_role,
}


#: where runs for the room keep their output (docs/protocol.md, "Runs"): a document
#: under it takes ops only from the user who created it
RUNS_DIR = ".pairls/runs"


def is_run_path(path: str) -> bool:
    """Whether *path* is a run's output document (read-only for all but its runner)."""
    return path.startswith(RUNS_DIR + "/")


def valid_path(path: str) -> bool:
    """A document path: relative, '/'-separated, no empty, '.' or '..' segment."""
    if not 1 <= len(path) <= MAX_PATH or _BAD_PATH_CHARS.search(path) or bad_text(path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def encode(msg: dict[str, Any]) -> str:
    """Serialize one hub message (compact JSON, non-ASCII kept as is)."""
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


#: code points encoded at one go by :func:`encode_string`
_STRING_PIECE = 1 << 18


def encode_string(text: str) -> bytes:
    """*text* as a JSON string (with its quotes) in UTF-8, as :func:`encode` writes it.

    Built in pieces: each holds the interpreter only briefly, so a large text
    can be encoded on a worker thread while the event loop goes on.
    """
    parts = [b'"']
    for i in range(0, len(text), _STRING_PIECE):
        parts.append(json.dumps(text[i : i + _STRING_PIECE], ensure_ascii=False)[1:-1].encode("utf-8"))
    parts.append(b'"')
    return b"".join(parts)


def error(code: ErrorCode, detail: str | None = None, **extra: Any) -> str:
    """An encoded ``error`` message; *detail* must be one of our fixed texts."""
    msg: dict[str, Any] = {"type": "error", "code": code.value, "message": detail or MESSAGES[code]}
    msg.update({k: v for k, v in extra.items() if v is not None})
    return encode(msg)
