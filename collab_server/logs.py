"""The hub's log lines on stderr: ``--log-format text`` (the default) or ``json``.

``json`` writes one JSON object per line, for journald, Loki, Elasticsearch
and the like::

    {"time": "2025-01-31T12:00:00.123Z", "level": "INFO", "logger": "collab_server.hub",
     "message": "joined as editor", "room": "q3LbX0aZ", "participant": "Ab12Cd34"}

``room`` and ``participant`` are there when the line is about a connection
(the hub's per-connection ``LoggerAdapter`` puts them on the record); a
traceback goes in ``exc``.  The text format shows them as a
``[room/participant]`` prefix.  What the hub logs never holds document text,
ops or secrets; these formatters add nothing but the record's own fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "configure"]

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
#: record attributes that describe the connection a line is about
CONNECTION_FIELDS = ("room", "participant")


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: [room/participant] message`` (the prefix only for a connection's lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        participant = getattr(record, "participant", None)
        if participant is not None:
            record.message = f"[{getattr(record, 'room', '-')}/{participant}] {record.message}"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONNECTION_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # default=str: a %-argument that is not JSON (a Path, say) is already
        # text in "message"; this only guards extra fields someone added
        return json.dumps(out, ensure_ascii=False, default=str)


def _utc(record: logging.LogRecord) -> str:
    """The record's time in ISO 8601, UTC, with milliseconds: ``2025-01-31T12:00:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def configure(level: str, fmt: LogFormat = "text") -> None:
    """Send every log record of *level* and above to stderr in *fmt* (replaces the root's handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Neither format shows where a line was logged, so logging need not walk
    # the stack to find it (the Logging HOWTO's "Optimization"): that walk
    # also gives every suspended frame above it a frame object, which lives
    # as long as the connection whose coroutine logged.
    logging._srcfile = None
