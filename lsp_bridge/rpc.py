"""JSON-RPC with the editor: pygls's protocol, with a short way for the keystroke path.

pygls handles every message in several layers: cattrs structures it into
lsprotocol classes (and unstructures what goes out), each notification gets
a uuid, a future and a copy of the context, ``didChange`` goes through a
builtin generator handler before ours.  A keystroke crosses the editor
boundary several times (the typist's server: its ``didChange``; each peer's
server: the ``workspace/applyEdit``, its answer, the ``didChange`` that
reports it, the peers' cursors), so the messages of that path take a
shorter way; everything else goes through pygls as before:

* ``textDocument/didChange`` in: read from the JSON itself, the workspace's
  document updated as pygls's own handler does, then
  :func:`lsp_bridge.features.text_sync.changed`;
* requests the server makes of the editor (``workspace/applyEdit``,
  ``workspace/inlayHint/refresh``): written as plain JSON, with ids of their
  own (``pairls-N``) whose answers resolve a future directly;
* notifications (``pairls/cursors`` and the others): written as plain JSON;
* ``pairls/*`` notifications in (the VS Code extension's ``pairls/cursor`` at
  every move of the cursor): their params kept as the JSON they came as, where
  pygls would make each object of them an instance of a namedtuple type it
  creates for that object (160 us for one cursor).

The editor receives the same JSON-RPC messages either way.  A ``didChange``
whose shape is not what LSP says goes the long way, so pygls answers it as
it answers any malformed message.

Everything goes out through :func:`collab_core.jsonio.dumps` (orjson), what
pygls writes by itself too (``_send_data``: its answers and notifications).
A request that could not be read, or is not JSON-RPC 2.0 (:func:`is_json_rpc`:
pygls's dispatch raised on it), gets JSON-RPC's error (:func:`refusal`);
pygls's reader gave it no answer.  A message whose fields are not what LSP
says is logged, and refused, by the fields and the types they should have
(:class:`Unreadable`): cattrs' messages, which pygls logged, quote the values.
:class:`PyglsLogFilter` keeps documents' text out of pygls's log, and a
refusal in words (:class:`UserError`) out of its errors.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Union

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from lsprotocol import types as lsp
from pygls.exceptions import (
    FeatureNotificationError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
)
from pygls.protocol import JsonRPCNotification, LanguageServerProtocol, default_converter

from collab_core import jsonio

from .editor_sync import ContentChange

__all__ = [
    "EditorRequestError",
    "NotJsonRpc",
    "PairlsProtocol",
    "PyglsLogFilter",
    "Unreadable",
    "UserError",
    "converter",
    "did_change_of",
    "is_json_rpc",
    "raised_at",
    "refusal",
    "unreadable",
    "wrong_fields",
]

logger = logging.getLogger(__name__)

#: LSP's methods whose messages are notifications (no ``id``)
NOTIFICATIONS = frozenset(
    method for method, (kind, *_) in lsp.METHOD_TO_TYPES.items() if "id" not in attrs.fields_dict(kind)
)
#: the handler of a ``didChange`` read the short way: (uri, version, changes)
ChangeHandler = Callable[[str, int, list[ContentChange]], None]


class EditorRequestError(Exception):
    """The editor answered one of our requests with an error (its message; never shown to peers)."""


class UserError(JsonRpcException):
    """A request refused for the user, in words (a bad invite, no room yet): LSP 3.17's
    RequestFailed.  The editor shows the message; it is no failure of the server's."""

    CODE = -32803


class PyglsLogFilter(logging.Filter):
    """On pygls's JSON-RPC logger: what it logs about a handler, without the message's params
    (a ``didOpen``'s or ``didChange``'s hold the document's text, which is never logged), a
    :class:`UserError` as one line at INFO instead of an ERROR with its traceback, pygls's own
    refusals (a command we do not have) as one line at WARNING, and nothing of a message it
    could not structure (:class:`Unreadable` says what was wrong)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Unable to deserialize message"):
            # (its traceback quotes the wrong values; the reader logs a line of its own)
            return False
        if isinstance(record.msg, str) and record.msg.startswith("Cancel notification for unknown"):
            # (an everyday race: the answer went before the editor's cancel came)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        if isinstance(record.msg, str) and record.msg.startswith(_NAMING) and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            # (the method's name and the request's id stay, if short)
            record.args = tuple(_short(a) for a in args)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UserError):
            record.msg, record.args = "a request refused: %s", (exc.message,)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        if isinstance(exc, JsonRpcException) and not isinstance(exc, JsonRpcInternalError):
            # pygls's refusal of what the editor asked (a command we do not have, say): the
            # editor's mistake, one line; its message may repeat what the editor sent
            record.msg, record.args = "a request refused: %s (%s)", (type(exc).__name__, exc.code)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
            return logging.getLogger(record.name).isEnabledFor(logging.WARNING)
        return True


#: pygls's log lines that name what the editor sent (clipped by :func:`_short`)
_NAMING = ("Failed to handle", "Ignoring notification for unknown method")


def _short(arg: Any) -> Any:
    return arg if isinstance(arg, str | int) and len(str(arg)) <= 200 else "(not logged)"


class PairlsProtocol(LanguageServerProtocol):
    """pygls's LSP protocol with the short way of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: set by the text sync feature: where a ``didChange`` read the short way goes
        self.change_handler: ChangeHandler | None = None
        self._ids = itertools.count(1)
        self._answers: dict[str, asyncio.Future[Any]] = {}
        #: messages that took the short way, in and out (the status shows them)
        self.short_in = 0
        self.short_out = 0

    # -- out --------------------------------------------------------------------------------

    def notify_json(self, method: str, params: dict[str, Any]) -> None:
        """A notification whose *params* are plain JSON values already."""
        if not self._write_json({"jsonrpc": "2.0", "method": method, "params": params}):
            logger.error("no writer to the editor: %s not sent", method)

    def request_json(self, method: str, params: dict[str, Any] | None) -> asyncio.Future[Any]:
        """Write a request now; the future is the editor's ``result`` as plain JSON (or
        :class:`EditorRequestError`)."""
        msg_id = f"pairls-{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answers[msg_id] = fut
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            written = self._write_json(msg)
        except BaseException:
            self._answers.pop(msg_id, None)
            raise
        if not written:
            self._answers.pop(msg_id, None)
            fut.set_exception(BrokenPipeError("no writer to the editor"))
        return fut

    def _write_json(self, msg: dict[str, Any]) -> bool:
        if not self._write(msg):
            return False
        self.short_out += 1
        return True

    def _send_data(self, data: Any) -> None:
        """pygls's own messages (the answers to requests, its notifications), written as
        :meth:`_write_json` writes: pygls's ``json.dumps`` took ten times as long (a completion
        list of 300 items: 0.7 ms) and logged each message's text at INFO."""
        if not data:
            return
        try:
            if not self._write(data):
                logger.error("no writer to the editor: a message not sent")
        except BrokenPipeError:
            raise  # (as pygls: the editor is gone)
        except Exception as error:
            logger.exception("cannot write a message to the editor")
            self._server._report_server_error(error, JsonRpcInternalError)

    def _write(self, msg: Any) -> bool:
        writer = self.writer
        if writer is None:
            return False
        body = jsonio.dumps(msg, default=self._serialize_message)
        # (Content-Length counts bytes, LSP 3.17 "Base Protocol"; pygls's StdoutWriter flushes)
        writer.write(b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
        return True

    # -- in ---------------------------------------------------------------------------------

    def structure_message(self, data: dict[str, Any]) -> Any:
        # (pygls calls this on every object of a message, inner ones first; only the
        # message itself has "jsonrpc")
        if "jsonrpc" in data:
            method = data.get("method")
            if "id" in data and type(method) is str and method in NOTIFICATIONS and method != lsp.EXIT:
                # (pygls would read it as the notification, drop its id, and never answer it)
                raise Unreadable(JsonRpcInvalidRequest(), data, "$.id: the method's messages have none")
            if "method" not in data:
                msg_id = data.get("id")
                if type(msg_id) is str and msg_id in self._answers:  # (ours are strings)
                    return _Answer(data)
            elif data["method"] == lsp.TEXT_DOCUMENT_DID_CHANGE and "id" not in data:
                change = did_change_of(data.get("params"))
                if change is None:
                    # not what LSP says (pygls would read a uri of 5 as "5", and fail on it)
                    self._unreadable(data, "$.params: not a didChange's")
                if self.change_handler is not None:
                    return change
            elif data["method"] == lsp.CANCEL_REQUEST and not _cancels_an_id(data.get("params")):
                # (pygls would look the id up as a dict key: a list or an object raised there)
                raise Unreadable(JsonRpcInvalidParams(), data, "$.params.id: expected int or str")
            elif "id" not in data and str(data["method"]).startswith("pairls/"):
                return _Note(method=data["method"], jsonrpc=data["jsonrpc"], params=data.get("params"))
        return self._structured(data)

    def _structured(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:  # (pygls's, from cattrs': its cause names values)
            raise Unreadable(exc, data) from None

    def _unreadable(self, data: dict[str, Any], otherwise: str) -> NoReturn:
        """Raise :class:`Unreadable` for *data*: where cattrs finds it wrong, else *otherwise*."""
        self._structured(data)
        raise Unreadable(JsonRpcInvalidParams(), data, otherwise)

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Answer):
            self.short_in += 1
            self._answered(message.data)
        elif isinstance(message, _Note):
            self.short_in += 1
            super().handle_message(message)
        elif isinstance(message, _Change):
            self.short_in += 1
            if self._shutdown:
                logger.warning("Server shutting down. No more requests!")
                return
            assert self.change_handler is not None  # (structure_message)
            try:
                self.change_handler(message.uri, message.version, message.changes)
            except Exception as exc:  # as pygls reports a failed notification handler
                logger.exception("didChange failed")
                self._server._report_server_error(exc, FeatureNotificationError)
        else:
            super().handle_message(message)

    def refuse(self, data: Any, error: Exception) -> None:
        """Answer *data*, a message that could not be read, if it is a request: see :func:`refusal`."""
        answer = refusal(data, error)
        if answer is not None and not self._write(answer):
            logger.error("no writer to the editor: a refusal not sent")

    def _answered(self, data: dict[str, Any]) -> None:
        fut = self._answers.pop(data["id"])
        if fut.done():
            return
        error = data.get("error")
        if error is not None:
            text = error.get("message") if isinstance(error, dict) else None
            fut.set_exception(EditorRequestError(str(text or "error")))
        else:
            fut.set_result(data.get("result"))


class _Note(JsonRPCNotification):
    """A ``pairls/*`` notification from the editor, its params plain JSON."""


class _Answer:
    """An answer to one of our requests, as plain JSON."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class _Change:
    """A ``didChange`` read the short way."""

    __slots__ = ("changes", "uri", "version")

    def __init__(self, uri: str, version: int, changes: list[ContentChange]) -> None:
        self.uri, self.version, self.changes = uri, version, changes


class Unreadable(JsonRpcException):
    """A JSON-RPC 2.0 message whose fields are not what LSP says: JSON-RPC's error (pygls's
    code), its message the fields that were wrong and what they should have been, never their
    values (cattrs' own messages quote them: the text of a document, say)."""

    def __init__(self, error: JsonRpcException, data: dict[str, Any], where: str | None = None) -> None:
        self.where = wrong_fields(error.__cause__) if where is None else where
        super().__init__(code=error.code, message=f"{error.message}: {self.where}")
        method = data.get("method")
        #: LSP's name of its method; what else the editor named is not repeated
        known = isinstance(method, str) and method in lsp.METHOD_TO_TYPES
        self.method = method if known else "an answer" if method is None else "a method"


def _cancels_an_id(params: Any) -> bool:
    return isinstance(params, dict) and type(params.get("id")) in (int, str)


def unreadable(exc: BaseException) -> str | None:
    """What was wrong with a message from the editor that could not be read, for the log: where
    and what kind, never a value of the message; None if *exc* is no mistake of the editor's
    (then it is a bug of ours: :func:`raised_at`)."""
    if isinstance(exc, NotJsonRpc):
        return "not JSON-RPC 2.0"
    if isinstance(exc, Unreadable):
        return f"{exc.method}: {exc.where}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "JSON nested too deep"
    return None


def raised_at(exc: BaseException) -> str:
    """*exc*'s class and where it was raised, for the log: not its message, which may quote what
    it was given."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


#: wrong fields listed in one message at most (the rest counted)
MAX_WRONG = 3


def wrong_fields(exc: BaseException | None) -> str:
    """Where *exc*, cattrs' failure to structure a message, found it wrong ("$.params.position.line:
    expected int"): field names and list indexes, as LSP spells them, and the types expected."""
    found = list(_wrong(exc, "$", None)) if exc is not None else []
    if not found:
        return "unreadable"
    more = f" (and {len(found) - MAX_WRONG} more)" if len(found) > MAX_WRONG else ""
    return "; ".join(found[:MAX_WRONG]) + more


def _wrong(exc: BaseException, path: str, expected: Any) -> Iterator[str]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        noted, bare = exc.group_exceptions()
        for sub, note in noted:
            if isinstance(note, AttributeValidationNote):
                step = "." + _CAMEL.sub(lambda m: m.group(1).upper(), note.name)
            elif isinstance(note, IterableValidationNote) and type(note.index) is int:
                step = f"[{note.index}]"
            else:
                step = "[?]"  # (a mapping's key, say: a value of the message)
            yield from _wrong(sub, path + step, note.type)
        for sub in bare:
            yield from _wrong(sub, path, None)
    elif isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _wrong(inner, path, None)
    elif isinstance(exc, KeyError):
        yield f"{path}: missing"
    elif expected is not None:
        name = getattr(expected, "__name__", None) or repr(expected)
        yield f"{path}: expected {name[:80]}"
    else:
        yield f"{path}: {type(exc).__name__}"


_CAMEL = re.compile(r"_([a-z])")


class NotJsonRpc(JsonRpcInvalidRequest):
    """What the reader raises for a message that is not JSON-RPC 2.0 (:func:`is_json_rpc`):
    pygls's dispatch would raise on it, or log it whole as an unknown message."""

    def __init__(self) -> None:
        super().__init__(message="Invalid Request: not JSON-RPC 2.0")


def converter() -> cattrs.Converter:
    """pygls's converter, except that a ``languageId`` must be a string: lsprotocol's hook for
    its type (a LanguageKind or a string) let any value through, and a document opened with a
    languageId of 5 failed every completion in it."""
    conv: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]
    conv.register_structure_hook(Union[lsp.LanguageKind, str], _language_id)  # noqa: UP007 - (the annotation's own type)
    return conv


def _language_id(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise TypeError("a languageId is a string")
    return value


def is_json_rpc(data: Any) -> bool:
    """Whether *data*, a message read as JSON, is one of JSON-RPC 2.0's: an object that says so,
    whose method (if it has one) is a string and whose id (if it has one) a string, an integer
    or null; without a method, an answer (an id, and a result or an error).  pygls's dispatch
    raised on the others (a method of 5: MethodNotFound's message; an id of [1]: a dict key)."""
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        return False
    if "id" in data and not (data["id"] is None or type(data["id"]) in (int, str)):
        return False
    if "method" in data:
        return type(data["method"]) is str
    return "id" in data and ("result" in data or "error" in data)


def refusal(data: Any, error: Exception) -> dict[str, Any] | None:
    """JSON-RPC's error answer to *data*, a message read as JSON that could not be structured
    (its params not what LSP says: *error*), if it is a request with an id to answer; else None.

    pygls's reader logs such a message and goes on, and the editor waits for its answer for
    ever.  The error is *error*'s when it is JSON-RPC's (pygls raises Invalid Params), else
    Invalid Request; its message is the exception's class, never the text it may hold."""
    if not isinstance(data, dict) or "method" not in data:
        return None  # (an answer, or not even that)
    msg_id = data.get("id")
    if type(msg_id) is not int and type(msg_id) is not str:
        return None  # a notification (nothing to answer) or an id no answer could name
    if isinstance(error, JsonRpcException):
        code, message = error.code, error.message
    else:
        code, message = JsonRpcInvalidRequest.CODE, f"Invalid Request: {type(error).__name__}"
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def did_change_of(params: Any) -> _Change | None:
    """``didChange`` params as plain JSON -> uri, version, changes; None if not that shape."""
    if not isinstance(params, dict):
        return None
    td = params.get("textDocument")
    changes = params.get("contentChanges")
    if not isinstance(td, dict) or not isinstance(changes, list):
        return None
    uri, version = td.get("uri"), td.get("version")
    if not isinstance(uri, str) or type(version) is not int:
        return None
    out = []
    for c in changes:
        if not isinstance(c, dict):
            return None
        text = c.get("text")
        if not isinstance(text, str):
            return None
        r = c.get("range")
        if r is None:
            out.append(ContentChange(None, text))
            continue
        try:
            s, e = r["start"], r["end"]
            where = (s["line"], s["character"], e["line"], e["character"])
        except (TypeError, KeyError):
            return None
        if any(type(x) is not int or x < 0 for x in where):
            return None
        out.append(ContentChange(where, text))
    return _Change(uri, version, out)
