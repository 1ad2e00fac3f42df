"""Logs never carry secrets, even in lines other libraries write."""

from __future__ import annotations

import logging

import pytest

from voxflow.core.logging import configure_logging


def test_a_stream_token_in_uvicorns_websocket_line_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("info", "json")
    token = "Y9rV6u2TR2VrSJcW5ZqmEDiq_icEobWlBvPHr_sFvcw"

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            f"/v1/sessions/call_1/stream?token={token}&x=1",
        )

    assert token not in caplog.text
    assert "token=[redacted]&x=1" in caplog.text
