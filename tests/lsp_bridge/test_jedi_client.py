"""JediClient, the policy of the language server's jedi worker: driven with lines and times,
no process (the worker itself is driven over its pipes in test_jedi_worker.py)."""

from __future__ import annotations

import json
from typing import Any

from lsp_bridge.completion import CompletionEngine, IdentifierIndex, SemanticResult
from lsp_bridge.jedi_client import Ask, JediClient, Received

TEXT = "import os\nos.pa"


def client(**kw: Any) -> JediClient:
    return JediClient(CompletionEngine(IdentifierIndex()), **kw)


def ask(c: JediClient, text: str = TEXT, now: float = 0.0, path: str = "a.py") -> Ask:
    a = c.ask(path, text, len(text), None, now)
    assert isinstance(a, Ask), a
    return a


def answer(ask_id: int, names: list[list[str]] | None = None, seconds: float = 0.001) -> bytes:
    msg: dict[str, Any] = {"id": ask_id, "seconds": seconds}
    if names is None:
        msg["error"] = "internal"
    else:
        msg["names"] = names
    return json.dumps(msg).encode() + b"\n"


def test_the_first_question_starts_a_worker_and_carries_the_document_and_the_cursor() -> None:
    c = client()
    a = ask(c)
    assert a.spawn and a.wait_s == c.wait_s
    msg = json.loads(a.data)
    assert msg == {"id": a.id, "path": "a.py", "source": TEXT, "line": 2, "column": 5}
    assert a.data.endswith(b"\n") and a.data.count(b"\n") == 1  # one line, whatever the text holds
    c.started(4242)
    assert c.received(b'{"ready": true}\n') is None
    got = c.received(answer(a.id, [["path", "module"], ["pardir", "statement"]]))
    assert got == Received(a.id, SemanticResult([("path", "module"), ("pardir", "statement")], "ok", 0.001))
    assert c.status() == {"pid": 4242, "available": True, "starts": 1, "waits": 1, "answers": 1}


def test_the_answer_serves_the_next_keystrokes_in_the_word_without_asking() -> None:
    c = client()
    a = ask(c)
    c.started(1)
    c.received(answer(a.id, [["path", "module"]]))
    more = TEXT + "t"
    assert c.ask("a.py", more, len(more), None, 1.0) == SemanticResult([("path", "module")], "cached")
    b = ask(c, "import os\nos.ge", 2.0)
    assert not b.spawn  # the worker runs


def test_one_question_at_a_time_the_newest_waits_for_the_worker() -> None:
    c = client()
    a = ask(c)
    c.started(1)
    assert c.to_send(0.0) is None
    assert c.ask("b.py", "x.y", 3, None, 0.1) == SemanticResult([], "skipped")
    assert c.ask("b.py", "x.y\nz.w", 7, None, 0.2) == SemanticResult([], "skipped")  # newer
    assert c.stats["busy"] == 2
    c.waited_out(a.id)
    c.received(answer(a.id, [["path", "module"]], seconds=0.5))
    assert c.stats["late"] == 1
    waiting = c.to_send(0.6)
    assert waiting is not None and not waiting.spawn and waiting.wait_s == 0
    assert json.loads(waiting.data) == {
        "id": waiting.id,
        "path": "b.py",
        "source": "x.y\nz.w",
        "line": 2,
        "column": 3,
    }
    assert c.to_send(0.7) is None  # sent once
    assert c.ask("b.py", "q.r", 3, None, 0.8) == SemanticResult([], "skipped")  # busy with it
    got = c.received(answer(waiting.id, [["wx", "function"]]))
    assert got is not None and got.result.names == [("wx", "function")]
    assert c.to_send(0.9) is not None  # q.r's question


def test_a_question_waiting_for_a_dead_worker_is_dropped() -> None:
    c = client()
    ask(c)
    c.started(1)
    c.ask("b.py", "x.y", 3, None, 0.1)
    c.exited(0.2)
    assert c.to_send(0.3) is None
    assert ask(c, "x.y", 0.4, path="b.py").spawn


def test_no_wait_on_a_document_jedi_was_slower_on_than_the_wait_lately() -> None:
    c = client(wait_s=0.012)
    a = ask(c)
    c.started(1)
    c.received(answer(a.id, [["path", "module"]], seconds=0.2))
    waits = []
    for i, word in enumerate(["ge", "li", "un", "wa", "ch"]):
        b = ask(c, f"import os\nos.{word}", 1.0 + i)
        waits.append(b.wait_s)
        c.received(answer(b.id, [["getcwd", "function"]], seconds=0.001))
    assert waits == [0, 0, 0, 0, 0.012]  # four fast answers since the slow one
    assert ask(c, "import os\nos.ge", 9.0, path="b.py").wait_s == 0.012  # another document


def test_nothing_is_asked_where_jedi_has_nothing_to_say() -> None:
    c = client()
    assert c.ask("a.js", TEXT, len(TEXT), None, 0.0) == SemanticResult([], "off")
    assert c.ask("a.py", "import os\n", 10, None, 0.0) == SemanticResult([], "skipped")  # no prefix
    assert c.status() == {"pid": None, "available": True}  # and no worker for it


def test_a_dead_worker_fails_its_question_is_said_once_and_a_new_one_starts_at_the_next() -> None:
    c = client()
    a = ask(c)
    c.started(7)
    line, failed = c.exited(1.0)
    assert line is not None and "pid 7" in line and "died" in line
    assert failed == Received(a.id, SemanticResult([], "error"))
    assert c.pid is None and c.stats["deaths"] == 1
    b = ask(c, "import os\nos.ge", 2.0)
    assert b.spawn and b.id != a.id
    c.started(8)
    assert c.received(answer(a.id, [["x", "y"]])) is None  # the dead worker's question: no longer asked
    assert c.stats["bad_lines"] == 1
    assert c.received(answer(b.id, [["getcwd", "function"]])) is not None
    assert c.status()["starts"] == 2


def test_a_hung_worker_is_killed_once_and_replaced() -> None:
    c = client(hang_s=10.0)
    a = ask(c, now=100.0)
    c.started(7)
    assert c.check(105.0) is None
    assert c.ask("b.py", "x.y", 3, None, 105.0) == SemanticResult([], "skipped")
    line = c.check(110.5)
    assert line is not None and "killed" in line and c.stats["hangs"] == 1
    assert c.check(111.0) is None  # said and killed once
    assert c.ask("b.py", "x.y", 3, None, 111.0) == SemanticResult([], "skipped")  # until it is gone
    said, failed = c.exited(111.2)
    assert said is None and failed == Received(a.id, SemanticResult([], "error"))
    assert c.stats["deaths"] == 0  # a kill is a hang, not also a death
    assert ask(c, "x.y", 112.0, path="b.py").spawn


def test_a_worker_the_server_stops_is_no_death() -> None:
    c = client()
    a = ask(c)
    c.started(5)
    c.stopping()
    assert c.exited(1.0) == (None, Received(a.id, SemanticResult([], "error")))
    assert c.stats["deaths"] == 0 and c.pid is None


def test_the_question_that_waited_is_not_sent_to_a_worker_the_server_stops() -> None:
    # (its stdin is closed: the write after the answer to the question before raised)
    c = client()
    a = ask(c)
    c.started(5)
    assert c.ask("b.py", "x.y", 3, None, 0.1) == SemanticResult([], "skipped")  # waits
    c.stopping()
    c.received(answer(a.id, [["path", "module"]]))
    assert c.to_send(0.2) is None


def test_failures_in_a_row_pause_the_worker_then_it_is_tried_again() -> None:
    c = client(failures_before_pause=3, pause_s=60.0)
    now = 0.0
    for i in range(3):
        ask(c, f"import os\nos.p{'a' * i}", now)
        c.started(10 + i)
        line, _ = c.exited(now)
        now += 1.0
    assert line is not None and "next worker in 60 s" in line and c.stats["pauses"] == 1
    text = "import os\nos.ge"
    assert c.ask("a.py", text, len(text), None, now) == SemanticResult([], "unavailable")
    assert c.ask("a.py", text, len(text), None, now + 58.0) == SemanticResult([], "unavailable")
    again = ask(c, text, now + 61.0)
    assert again.spawn
    c.started(20)
    c.received(answer(again.id, [["getcwd", "function"]]))
    # an answer clears the count: two more deaths do not pause
    for i in range(2):
        ask(c, f"import os\nos.x{'a' * i}", now + 70 + i)
        c.exited(now + 70 + i)
        c.started(30 + i)
    assert c.stats["pauses"] == 1


def test_a_worker_without_jedi_makes_jedi_unavailable_for_good() -> None:
    c = client()
    a = ask(c)
    c.started(3)
    got = c.received(b'{"ready": false, "why": "no jedi"}\n')
    assert got == Received(a.id, SemanticResult([], "unavailable"))
    c.exited(0.5)
    assert c.ask("a.py", TEXT, len(TEXT), None, 1000.0) == SemanticResult([], "unavailable")
    assert c.status()["available"] is False


def test_jedis_error_and_garbage_lines_are_counted_not_raised() -> None:
    c = client()
    a = ask(c)
    c.started(1)
    for bad in (b"\n", b"not json\n", b"[1, 2]\n", b'{"id": 999, "names": []}\n'):
        assert c.received(bad) is None
    assert c.stats["bad_lines"] == 4
    got = c.received(answer(a.id, None))
    assert got is not None and got.result.status == "error"
    b = ask(c, "import os\nos.ge", 1.0)
    got = c.received(json.dumps({"id": b.id, "names": [["x", 1]]}).encode())  # not (str, str) pairs
    assert got is not None and got.result.status == "error"
    assert c.stats["errors"] == 2
