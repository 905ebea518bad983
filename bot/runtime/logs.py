"""Log output of the server processes: the level, and text or JSON lines, personal data masked.

`configure_logging(level, format)` sets up the root logger once (unless the embedding program or
a test already did). `text` writes one readable line per record; `json` writes one JSON object
per line for log collectors (Loki, Elasticsearch, CloudWatch): `time` (ISO 8601, UTC), `level`,
`logger`, `message`, `exception` when there is one, and the record's context fields (what a call
passed as `extra=`). Both go through the same `MaskingFilter` (bot.runtime.privacy), and JSON
context fields that are text are masked too, as the text format never shows them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.runtime.privacy import install_log_masking, mask

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has: anything else on a record came from `extra=` and is context.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _context_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def _context_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask(str(value))


def configure_logging(
    level: str = "INFO", format_: str = "text", stream: TextIO | None = None
) -> bool:
    """Log records of `level` and above to `stream` (stderr) as `format_` (text or json), masked;
    False, doing nothing, when the root logger already has handlers (a host program, a test)."""
    root = logging.getLogger()
    if root.handlers:
        return False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format_ == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    install_log_masking()  # phone numbers, IDs, e-mail addresses, cards (bot.runtime.privacy)
    return True
