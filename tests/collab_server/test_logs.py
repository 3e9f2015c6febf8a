"""The log formatters of ``pairls-hub --log-format text|json`` (the CLI tests run them in a real hub)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from collab_server import logs
from collab_server.hub import _ConnLog


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logger = logging.getLogger("tests.logs")
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def use(fmt: logging.Formatter) -> logging.Logger:
    logger = logging.getLogger("tests.logs")
    logger.handlers[0].setFormatter(fmt)
    return logger


def test_json_lines_carry_the_connection_and_the_traceback_on_one_line(stream: io.StringIO) -> None:
    logger = use(logs.JsonFormatter())
    conn = _ConnLog(logger, {"participant": "Ab12"})
    conn.info("connected")
    conn.extra = {"participant": "Ab12", "room": "q3LbX0aZ"}
    try:
        raise ValueError("boom")
    except ValueError:
        conn.exception("handler failed for %s", "a reason\nwith a newline")
    logger.warning("no connection here: %d", 5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = map(json.loads, lines)
    assert first["message"] == "connected" and first["participant"] == "Ab12" and "room" not in first
    assert (first["level"], first["logger"]) == ("INFO", "tests.logs")
    assert second["message"] == "handler failed for a reason\nwith a newline"
    assert (second["room"], second["participant"], second["level"]) == ("q3LbX0aZ", "Ab12", "ERROR")
    assert second["exc"].startswith("Traceback") and "ValueError: boom" in second["exc"]
    assert third == {
        "time": third["time"],
        "level": "WARNING",
        "logger": "tests.logs",
        "message": "no connection here: 5",
    }


def test_text_lines_show_the_connection_as_a_prefix(stream: io.StringIO) -> None:
    logger = use(logs.TextFormatter())
    conn = _ConnLog(logger, {"participant": "Ab12"})
    conn.info("connected")
    conn.extra = {"participant": "Ab12", "room": "q3LbX0aZ"}
    conn.info("joined as %s", "editor")
    logger.info("plain")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" INFO tests.logs: [-/Ab12] connected")
    assert lines[1].endswith(" INFO tests.logs: [q3LbX0aZ/Ab12] joined as editor")
    assert lines[2].endswith(" INFO tests.logs: plain")


def test_configured_logging_does_not_look_for_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither format shows where a line was logged, so after ``configure`` logging does not walk
    the stack for it: the walk gives each suspended frame above the call a frame object, which a
    connection's coroutine keeps as long as the connection lives."""
    monkeypatch.setattr(logging, "_srcfile", logging._srcfile)  # put back afterwards
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    try:
        logs.configure("INFO", "json")
        root.addHandler(Keep())
        logging.getLogger("tests.logs.caller").info("connected")
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
    [record] = records
    assert (record.funcName, record.lineno) == ("(unknown function)", 0)
