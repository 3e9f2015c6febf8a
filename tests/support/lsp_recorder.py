"""A stand-in language server that records what an editor sends (stdio, JSON-RPC).

Tests run it instead of ``pairls-lsp`` to see an editor at the LSP boundary
as it is, with no bridge logic in between::

    python -m tests.support.lsp_recorder LOG

Every message the editor sends (requests, notifications, answers) is
appended to LOG as one JSON line.  It answers ``initialize`` with
incremental sync and UTF-16 positions, every other request with ``null``,
except ``workspace/executeCommand`` ``recorder.applyEdit``: its one argument
(``ApplyWorkspaceEditParams``) goes to the editor as a
``workspace/applyEdit`` request, and the editor's answer (result or error)
is the command's result.  So a test can send the editor any edit, several
``TextEdit`` s or a stale version included, from inside the editor.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any, BinaryIO


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if length is None:
        return None
    return json.loads(stream.read(length))  # type: ignore[no-any-return]


def write_message(stream: BinaryIO, msg: dict[str, Any]) -> None:
    body = json.dumps(msg, ensure_ascii=False).encode("utf-8")
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


def main(log_path: str) -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    ids = itertools.count(1)
    #: our applyEdit request id -> the executeCommand request id waiting for its answer
    waiting: dict[str, Any] = {}
    with open(log_path, "a", encoding="utf-8") as log:
        while (msg := read_message(stdin)) is not None:
            log.write(json.dumps(msg, ensure_ascii=False) + "\n")
            log.flush()
            method = msg.get("method")
            if method is None:  # an answer to one of our requests
                rid = waiting.pop(str(msg.get("id")), None)
                if rid is not None:
                    answer = {"result": msg["result"]} if "result" in msg else {"error": msg.get("error")}
                    write_message(stdout, {"jsonrpc": "2.0", "id": rid, "result": answer})
                continue
            if "id" not in msg:
                if method == "exit":
                    return
                continue
            result: Any = None
            if method == "initialize":
                result = {
                    "capabilities": {
                        "positionEncoding": "utf-16",
                        "textDocumentSync": {"openClose": True, "change": 2},
                        "executeCommandProvider": {"commands": ["recorder.applyEdit"]},
                    },
                    "serverInfo": {"name": "lsp-recorder"},
                }
            elif method == "workspace/executeCommand" and msg["params"]["command"] == "recorder.applyEdit":
                sid = f"recorder-{next(ids)}"
                waiting[sid] = msg["id"]
                edit = msg["params"]["arguments"][0]
                write_message(
                    stdout, {"jsonrpc": "2.0", "id": sid, "method": "workspace/applyEdit", "params": edit}
                )
                continue
            write_message(stdout, {"jsonrpc": "2.0", "id": msg["id"], "result": result})


if __name__ == "__main__":
    main(sys.argv[1])
