"""Logging set up once, by the CLI: readable text (default) or one JSON object a line.

`NOCHAT_LOG_FORMAT=json` is for log shippers: every line is an object with `time` (UTC,
RFC 3339 with milliseconds), `level`, `logger`, `message`, `exc` when there is a
traceback, and `request` or `connection`: an id for the HTTP request or WebSocket
connection the line was logged in (`ids.request` / `ids.connection` below; Trio tasks
inherit them from the task that started them), so one client's lines can be grouped.

Nothing logs message text, passwords or tokens (tests/e2e/test_logs.py checks a whole
chat session at DEBUG); user and room names may appear.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import time
from typing import Final

#: The HTTP request or WebSocket connection being served ("" outside of one).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("nochat_request", default="")
connection_id: contextvars.ContextVar[str] = contextvars.ContextVar("nochat_connection", default="")

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS: Final = frozenset({"text", "json"})

# Ids unique within a process and across its restarts: the pid, then a counter.
_counter = itertools.count(1)


def new_id(kind: str) -> str:
    """`r-<pid>-<n>` for a request, `c-<pid>-<n>` for a connection."""
    return f"{kind}-{os.getpid():x}-{next(_counter):x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a traceback are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request := request_id.get():
            entry["request"] = request
        if connection := connection_id.get():
            entry["connection"] = connection
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Send every logger's records to stderr at `level`, as text or JSON. Call once."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
