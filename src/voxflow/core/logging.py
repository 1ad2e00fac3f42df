"""structlog set-up: JSON lines for machines, pretty output in a terminal."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_KEYS = frozenset({"password", "api_key", "token", "authorization", "cookie", "secret"})
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"']+")


class _RedactUrlTokens(logging.Filter):
    """uvicorn logs each WebSocket's path with its query: a session's stream token is in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1[redacted]", record.msg)
        return True


def _drop_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # A defence in depth: no call site should log these, but if one does the value is gone.
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "[redacted]"
    return event


_URL_TOKENS = _RedactUrlTokens()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    if use_json:
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    # Loggers are cached on first use together with the processor list they saw; update
    # that list in place so a later call (another app in the same process) still applies.
    configured: list[Any] = structlog.get_config()["processors"]
    configured[:] = processors
    structlog.configure(
        processors=configured,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("uvicorn.error").addFilter(_URL_TOKENS)
    # uvicorn's access log would duplicate our request log line.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic announces its dialect on every readiness check; only its problems matter.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
