"""The language server as a real process on stdio pipes, spoken to in raw bytes: how it reads
the editor's messages (whatever pieces they come in) and when it ends."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import pytest

from tests.support.raw_lsp import INITIALIZE, RawServer, message, notification, request

pytestmark = pytest.mark.timeout(60)

#: a message whose bytes are not UTF-8 from the 18th on
NOT_UTF8 = b'{"a": "SECRET-TEXT\xff\xfe"}'


@pytest.mark.parametrize("stdio", ["pipe", "socket"])  # (socket: libuv's, Neovim's and VS Code's)
@pytest.mark.parametrize("loop", ["auto", "asyncio"])  # (auto: uvloop)
async def test_messages_in_pieces_several_in_one_write_and_a_header_without_length(
    raw: RawServer, loop: str, stdio: str
) -> None:
    server = await raw.start(loop, stdio)
    for i in range(len(INITIALIZE)):  # a byte a write: the server reads them in many pieces
        await server.write(INITIALIZE[i : i + 1])
        if i % 16 == 0:
            await asyncio.sleep(0.002)
    assert "capabilities" in (await server.answer(1))["result"]
    # three messages in one write
    await server.write(
        notification("initialized", {})
        + request(2, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
        + request(3, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
    )
    first, second = await server.answer(2), await server.answer(3)
    assert first["result"]["connected"] is False
    assert second["result"]["connected"] is False
    assert first["result"]["stdioReader"] == "loop"  # (not pygls's threads: serve.py)
    # headers with no Content-Length: skipped, and what follows is read as the next message
    await server.write(b"Content-Type: x\r\n\r\nContent-Length: -1\r\n\r\n" + request(4, "shutdown"))
    assert (await server.answer(4))["result"] is None
    await server.write(notification("exit"))
    code, log = await server.ended()
    assert code == 0
    assert log.count("a message without a Content-Length: skipped") == 2


@pytest.mark.parametrize("stdio", ["pipe", "socket"])
@pytest.mark.parametrize("loop", ["auto", "asyncio"])
async def test_exit_without_shutdown_ends_with_1(raw: RawServer, loop: str, stdio: str) -> None:
    server = await raw.start(loop, stdio)
    await server.write(INITIALIZE)
    await server.answer(1)
    await server.write(notification("initialized", {}) + notification("exit"))
    code, _ = await server.ended()
    assert code == 1


@pytest.mark.parametrize("stdio", ["pipe", "socket"])
@pytest.mark.parametrize("loop", ["auto", "asyncio"])
async def test_the_server_ends_when_the_editor_closes_its_stdin(
    raw: RawServer, loop: str, stdio: str
) -> None:
    server = await raw.start(loop, stdio)
    await server.write(INITIALIZE + notification("initialized", {}))
    await server.answer(1)
    server.close_stdin()
    code, log = await server.ended()
    assert code == 0
    assert "Traceback" not in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_the_server_ends_on_sigterm_and_sighup_as_on_the_end_of_stdin(
    raw: RawServer, signum: int
) -> None:
    """Neovim 0.7 ends a server that did not exit in 500 ms with SIGTERM, and Emacs sends
    SIGHUP to every process it started as it exits: each is the end of stdin (leave the room,
    then end), not a death on the spot (SIGHUP's default)."""
    server = await raw.start("auto", "socket")
    await server.write(INITIALIZE + notification("initialized", {}))
    await server.answer(1)
    server.proc.send_signal(signum)
    code, log = await server.ended()
    assert code == 0
    assert "Traceback" not in log


async def test_pygls_answers_are_written_in_utf_8(raw: RawServer, tmp_path: Any) -> None:
    # pygls's own answers (here a completion) are written as the server's other messages:
    # UTF-8 as it is, Content-Length counted in bytes
    server = await raw.start()
    await server.write(INITIALIZE)
    await server.answer(1)
    uri = (tmp_path / "notes.txt").as_uri()
    opened = {"uri": uri, "languageId": "plaintext", "version": 1, "text": "größe straße\ngr"}
    await server.write(
        notification("initialized", {})
        + notification("textDocument/didOpen", {"textDocument": opened})
        + request(
            2,
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 2}},
        )
    )
    body = await server.answer_body(2)
    assert '"größe"'.encode() in body  # (not "gr\\u00f6\\u00dfe")
    assert "größe" in [item["label"] for item in json.loads(body)["result"]["items"]]
    await server.write(
        request(3, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
    )
    assert (await server.answer(3))["result"]["connected"] is False  # (the byte count was right)
    await server.write(request(4, "shutdown"))
    assert (await server.answer(4))["result"] is None
    await server.write(notification("exit"))
    code, log = await server.ended()
    assert code == 0
    assert "cannot write" not in log


async def test_the_editors_mistakes_are_not_counted_as_the_servers_errors(raw: RawServer) -> None:
    # what a broken editor sends is answered or ignored, and logged; serverErrors (the
    # conftest fails a test on any) counts only failures of the server's own code
    server = await raw.start()
    await server.write(INITIALIZE)
    await server.answer(1)
    changed = {
        "textDocument": {"uri": "file:///never/opened.py", "version": 2},
        "contentChanges": [{"text": "x"}],
    }
    opened = {"uri": "file:///a.py", "languageId": "python", "version": 0, "text": "SECRET-TEXT"}
    await server.write(
        notification("initialized", {})
        + notification("textDocument/didChange", changed)  # never opened
        + request(2, "workspace/executeCommand", {"command": "no.such.command", "arguments": []})
        + request(3, "workspace/executeCommand", {"command": "pairls.joinRoom", "arguments": [{"invite": 5}]})
        + request(4, "no/such/method", {})
        + message({"jsonrpc": "2.0", "id": 5, "method": "textDocument/hover", "params": {"position": "x"}})
        + b"Content-Length: 9\r\n\r\n{not json"
        # not JSON-RPC 2.0: pygls's dispatch raised on the first three, and logged the last whole
        + message({"id": 8, "method": "textDocument/hover", "params": {}})
        + message([1, 2])
        + message("didOpen")
        + message({"jsonrpc": "1.0", "method": "textDocument/didOpen", "params": {"textDocument": opened}})
        # wrongly typed fields: cattrs' messages quote their values, and pygls logged them
        + notification("textDocument/didOpen", {"textDocument": {**opened, "version": "SECRET-TEXT"}})
        + request(
            9,
            "textDocument/hover",
            {"textDocument": {"uri": "file:///a.py"}, "position": {"line": "SECRET-TEXT"}},
        )
        + b"Content-Length: %d\r\n\r\n%b" % (len(NOT_UTF8), NOT_UTF8)
    )
    answers = {
        id_: json.loads(body) for id_, body in (await server.answer_bodies({2, 3, 4, 5, 8, 9})).items()
    }
    assert all("error" in answer for answer in answers.values()), answers
    assert answers[5]["error"]["code"] == -32602  # Invalid Params: before, no answer at all
    assert answers[8]["error"]["code"] == -32600  # Invalid Request: before, no answer at all
    assert answers[9]["error"] == {
        "code": -32602,
        "message": "Invalid Params: $.params.position.line: expected int; "
        "$.params.position.character: missing",
    }
    await server.write(
        request(6, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
    )
    stats = (await server.answer(6))["result"]["stats"]
    assert stats["serverErrors"] == 0 and stats["failedTasks"] == 0
    await server.write(request(7, "shutdown"))
    await server.answer(7)
    await server.write(notification("exit"))
    code, log = await server.ended()
    assert code == 0
    assert "a didChange of a document that is not open: ignored" in log
    assert log.count("Unable to read a message: not JSON-RPC 2.0") == 4, log
    assert "SECRET-TEXT" not in log and "Unable to handle" not in log, log
    assert (
        "Unable to read a message: textDocument/didOpen: $.params.textDocument.version: expected int" in log
    )
    assert "Unable to read a message: not UTF-8 (byte 18)" in log
    assert "Unable to deserialize" not in log and "ClassValidationError" not in log, log


async def test_a_refusal_in_words_is_not_logged_as_an_error(raw: RawServer) -> None:
    # a mistyped invite is an everyday mistake: the editor shows the words, and the server's log
    # (an editor's output panel) gets no ERROR and no traceback for it
    server = await raw.start()
    await server.write(INITIALIZE)
    await server.answer(1)
    bad = {"command": "pairls.joinRoom", "arguments": [{"invite": "no invite at all"}]}
    await server.write(notification("initialized", {}) + request(2, "workspace/executeCommand", bad))
    error = (await server.answer(2))["error"]
    assert error["code"] == -32803 and "not a pairls invite" in error["message"]
    await server.write(request(3, "shutdown"))
    await server.answer(3)
    await server.write(notification("exit"))
    code, log = await server.ended()
    assert code == 0
    assert "Traceback" not in log and "ERROR" not in log, log
