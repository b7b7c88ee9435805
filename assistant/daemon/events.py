"""The event log of `assistant run --events FILE|-`: one JSON object per line."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, TextIO

log = logging.getLogger(__name__)


class EventLog:
    """`{"event": name, "t": seconds, ...}` lines; also logged, so the journal tells the same story."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lock = threading.Lock()
        self.history: list[dict[str, Any]] = []

    def emit(self, event: str, t: float, **fields: Any) -> None:
        record = {"event": event, "t": round(t, 3), **{k: _plain(v) for k, v in fields.items()}}
        self.history.append(record)
        log.info("%s", json.dumps(record, ensure_ascii=False))
        if self.stream is not None:
            with self._lock:
                self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.stream.flush()


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    return value
