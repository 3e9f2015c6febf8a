"""Which failures pygls catches count as the server's own errors (``serverErrors`` in
``pairls.status``, which the language-server tests' fixture fails a test on), and how a
request that could not be read is answered, and what pygls's log of them may hold."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
)

from collab_core import jsonio
from lsp_bridge.rpc import (
    NotJsonRpc,
    PyglsLogFilter,
    Unreadable,
    UserError,
    is_json_rpc,
    raised_at,
    refusal,
    unreadable,
)
from lsp_bridge.serve import StdinProtocol, create_server
from lsp_bridge.server import PairlsServer

NOT_JSON_RPC_ERROR = {"code": -32600, "message": "Invalid Request: not JSON-RPC 2.0"}


def test_a_failure_of_the_servers_code_is_counted_and_the_editors_mistake_is_not() -> None:
    server = PairlsServer()
    # the editor's: a message that could not be read, a method or command we do not have, a
    # request refused with the user's message
    server.report_server_error(ValueError("not JSON"), JsonRpcException)
    server.report_server_error(JsonRpcMethodNotFound.of("no/such"), FeatureRequestError)
    server.report_server_error(JsonRpcInvalidParams.of("no such command"), FeatureRequestError)
    server.report_server_error(JsonRpcException(message="not a pairls invite"), FeatureRequestError)
    assert server.server_errors == 0
    # ours: a request handler that raised (pygls makes it an internal error), a notification
    # handler that raised, a message that could not be written
    server.report_server_error(JsonRpcInternalError(message="KeyError"), FeatureRequestError)
    server.report_server_error(KeyError("x"), FeatureNotificationError)
    server.report_server_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate"), JsonRpcInternalError)
    assert server.server_errors == 3


def test_a_request_that_could_not_be_read_is_answered_with_json_rpcs_error() -> None:
    hover = {"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover", "params": {"position": "x"}}
    assert refusal(hover, JsonRpcInvalidParams()) == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "Invalid Params"}
    }  # fmt: skip
    # what is not JSON-RPC's is Invalid Request, named by its class: never the text it holds
    answer = refusal({**hover, "id": "a"}, ValueError("the document's text"))
    assert answer == {
        "jsonrpc": "2.0",
        "id": "a",
        "error": {"code": -32600, "message": "Invalid Request: ValueError"},
    }


def test_nothing_is_answered_where_no_answer_could_be_matched() -> None:
    request = {"jsonrpc": "2.0", "method": "textDocument/hover", "params": None}
    for odd in ({}, {"id": None}, {"id": True}, {"id": 1.5}, {"id": {"a": 1}}, {"id": [1]}):
        assert refusal({**request, **odd}, JsonRpcInvalidParams()) is None  # a notification, or no id
    assert refusal({"jsonrpc": "2.0", "id": 1, "result": None}, JsonRpcInvalidParams()) is None  # an answer
    # a method that is no string: still a request, answered (the reader refuses it: not JSON-RPC)
    assert refusal({"jsonrpc": "2.0", "id": 1, "method": 5}, NotJsonRpc()) == {
        "jsonrpc": "2.0", "id": 1, "error": NOT_JSON_RPC_ERROR
    }  # fmt: skip
    for data in (None, [request], "x", 3):
        assert refusal(data, JsonRpcInvalidParams()) is None


def _record(msg: str, args: tuple[Any, ...], exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("pygls.protocol.json_rpc", logging.ERROR, "json_rpc.py", 1, msg, args, exc_info)


def test_pyglss_log_of_a_failed_handler_keeps_the_method_and_leaves_out_the_text() -> None:
    params = {"textDocument": {"uri": "file:///a.py", "text": "the document's text"}}
    record = _record("Failed to handle notification %r: %s", ("textDocument/didOpen", params))
    assert PyglsLogFilter().filter(record)
    assert record.getMessage() == "Failed to handle notification 'textDocument/didOpen': (not logged)"
    record = _record("Failed to handle request %s %s %s", (7, "textDocument/hover", params))
    assert PyglsLogFilter().filter(record)
    assert record.getMessage() == "Failed to handle request 7 textDocument/hover (not logged)"


def test_a_user_error_is_one_line_at_info_and_another_error_stays_as_it_is() -> None:
    pygls_rpc = logging.getLogger("pygls.protocol.json_rpc")
    level = pygls_rpc.level
    refused = UserError(message="not a pairls invite")
    try:
        pygls_rpc.setLevel(logging.DEBUG)
        record = _record('Exception occurred for message "%s"', (3,), refused)
        assert PyglsLogFilter().filter(record)
        assert (record.levelno, record.getMessage(), record.exc_info) == (
            logging.INFO, "a request refused: not a pairls invite", None
        )  # fmt: skip
        pygls_rpc.setLevel(logging.WARNING)  # (pairls-lsp's default: INFO is not logged)
        assert not PyglsLogFilter().filter(_record('Exception occurred for message "%s"', (3,), refused))
        record = _record('Exception occurred for message "%s"', (3,), KeyError("x"))
        assert PyglsLogFilter().filter(record)
        assert record.levelno == logging.ERROR and record.exc_info is not None
    finally:
        pygls_rpc.setLevel(level)


def test_a_message_not_json_rpc_2_is_the_editors_and_what_escapes_handling_one_is_ours() -> None:
    assert is_json_rpc({"jsonrpc": "2.0", "method": "initialized"})
    assert is_json_rpc({"jsonrpc": "2.0", "id": "a", "method": "x", "params": [1]})
    assert is_json_rpc({"jsonrpc": "2.0", "id": None, "error": {"code": 1}})  # (an answer)
    for data in ({"id": 1, "method": "x"}, {"jsonrpc": "1.0", "method": "x"}, [1, 2], "x", 5, None):
        assert not is_json_rpc(data), data
    # a method that is no string, an id no answer could carry, an answer to nothing: pygls's
    # dispatch raised on each (MethodNotFound's message, a dict key)
    for odd in ({"method": 5}, {"method": None, "id": 1}, {"method": "x", "id": [1]},
                {"method": "x", "id": True}, {"method": "x", "id": 1.5}, {"id": 1}, {}):  # fmt: skip
        assert not is_json_rpc({"jsonrpc": "2.0", **odd}), odd
    # a request, though not JSON-RPC's: answered (the editor waits for it)
    answer = refusal({"id": 1, "method": "x"}, NotJsonRpc())
    assert answer == {"jsonrpc": "2.0", "id": 1, "error": NOT_JSON_RPC_ERROR}

    # the reader's own step: a JSON-RPC 2.0 message read, then its handling fails past pygls's
    # handlers (our short way's code, pygls's dispatch): counted, and the next message read
    loop = asyncio.new_event_loop()
    try:
        server = create_server()
        reader = StdinProtocol(server, threading.Event(), loop.create_future())
        handled: list[Any] = []

        def handle(message: Any) -> None:
            handled.append(message)
            raise RuntimeError("a bug of ours")

        server.protocol.handle_message = handle  # type: ignore[method-assign]
        reader._handle(b'{"id": 1, "method": "shutdown"}')  # not JSON-RPC 2.0: never handled
        assert handled == [] and server.server_errors == 0
        reader._handle(b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}')
        assert len(handled) == 1 and server.server_errors == 1
        # an answer whose id no request could have: the editor's mistake, refused as it is read
        reader._handle(b'{"jsonrpc": "2.0", "id": ["SECRET-TEXT"], "result": null}')
        assert len(handled) == 1 and server.server_errors == 1

        # what escapes reading a message and is no mistake the editor can make: ours, counted
        def broken(data: Any) -> Any:
            raise KeyError("SECRET-TEXT")

        server.protocol.structure_message = broken  # type: ignore[method-assign]
        reader._handle(b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}')
        assert len(handled) == 1 and server.server_errors == 2
    finally:
        loop.close()


def _unreadable(data: dict[str, Any]) -> Unreadable:
    """What the server's protocol raises structuring *data* (the reader's step, no pipes)."""
    with pytest.raises(Unreadable) as caught:
        create_server().protocol.structure_message(data)
    return caught.value


def test_a_message_with_wrong_fields_says_where_and_never_what_they_held() -> None:
    secret = "SECRET-TEXT"
    opened = {"uri": "file:///a.py", "languageId": "python", "version": secret, "text": secret}
    error = _unreadable(
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": opened}}
    )
    assert (error.code, error.method) == (-32602, "textDocument/didOpen")
    assert error.where == "$.params.textDocument.version: expected int"
    assert error.message == "Invalid Params: $.params.textDocument.version: expected int"
    assert unreadable(error) == "textDocument/didOpen: $.params.textDocument.version: expected int"
    # several at once, a list's index, a field missing; past three, counted
    changed = {
        "textDocument": {"uri": "file:///a.py", "version": 2},
        "contentChanges": [{"text": "ok"}, {"text": secret, "range": {"start": secret, "end": [secret]}}],
    }
    error = _unreadable({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": changed})
    assert error.where == (
        "$.params.contentChanges[1].range.start.line: expected int; "
        "$.params.contentChanges[1].range.start.character: expected int; "
        "$.params.contentChanges[1].range.end.line: expected int (and 1 more)"
    )
    hover = {"textDocument": {"uri": "file:///a.py"}, "position": {"line": secret}}
    error = _unreadable({"jsonrpc": "2.0", "id": 3, "method": "textDocument/hover", "params": hover})
    assert error.where == "$.params.position.line: expected int; $.params.position.character: missing"
    assert refusal({"id": 3, "method": "textDocument/hover"}, error) == {
        "jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": f"Invalid Params: {error.where}"}
    }  # fmt: skip
    # what the editor named that LSP does not is not repeated either
    error = _unreadable({"jsonrpc": "2.0", "id": {"x": secret}, "method": secret})
    assert secret not in error.message and error.method == "a method"
    listed = _unreadable({"jsonrpc": "2.0", "method": [secret], "params": {}})
    assert listed.method == "a method"
    for wrong in (listed, *[_unreadable(m) for m in _WRONG]):
        assert secret not in f"{wrong.message} {unreadable(wrong)}", wrong


_WRONG = [
    {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "initialize",
        "params": {"processId": "SECRET-TEXT", "capabilities": {}},
    },
    {"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": ["SECRET-TEXT"]}},
    {"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": "SECRET-TEXT"}},
]


def test_what_could_not_be_read_is_logged_by_its_place_and_kind() -> None:
    for body in (b'{"a": SECRET-TEXT}', b'["SECRET-TEXT" 1]'):
        with pytest.raises(ValueError) as caught:
            jsonio.loads(body)
        assert unreadable(caught.value).startswith("not JSON (line 1, column ")
    with pytest.raises(UnicodeDecodeError) as bad:
        jsonio.loads(b'{"a": "SECRET-TEXT\xff"}')
    assert unreadable(bad.value) == "not UTF-8 (byte 18)"
    assert unreadable(NotJsonRpc()) == "not JSON-RPC 2.0"
    with pytest.raises(RecursionError) as deep:
        jsonio.loads(b"[" * 100_000 + b"]" * 100_000)
    assert unreadable(deep.value) == "JSON nested too deep"
    # anything else is no mistake of the editor's: a bug of ours, named by its class and where
    # it was raised, not by its message
    try:
        int("SECRET-TEXT")
    except ValueError as e:
        assert unreadable(e) is None
        assert raised_at(e) == f"ValueError at test_server_errors.py:{e.__traceback__.tb_lineno}"  # type: ignore[union-attr]
    # pygls's own line (its traceback quotes the values) is dropped: the reader logs one of its own
    record = _record("Unable to deserialize message\n%s", ("Traceback ... 'SECRET-TEXT'",))
    assert not PyglsLogFilter().filter(record)
