"""The server bench/voice_capacity.py starts: `voxflow serve --workers 1`, fakes injected.

    python bench/_voice_server.py PORT LAG_FILE [--offline]

What `voxflow serve` runs (uvicorn: uvloop, httptools, no access log; settings from VOXFLOW_*),
plus a task on its event loop recording how late a 5 ms sleep wakes up ("monotonic-time
lag-ms" lines in LAG_FILE, as bench/_support.py's LAG_SERVER). Without --offline, the audio
WebSocket's calls get the instant fakes of bench/_voice_fakes.py: the route has no injection
point for providers, so this process replaces `voice.routes.shared_models` and wraps
`voice.routes.run_call` to pass `stt_override`/`tts_override` (what the tests pass to run_call).
With --offline the configured offline models are used, loaded once and shared.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _voice_fakes import InstantStreamingTTS, MarkerSTT, fake_models

PERIOD = 0.005


async def sample_lag(out: TextIO) -> None:
    lines: list[str] = []
    flushed = time.monotonic()
    while True:
        before = time.monotonic()
        await asyncio.sleep(PERIOD)
        now = time.monotonic()
        lines.append(f"{now:.6f} {(now - before - PERIOD) * 1000:.3f}\n")
        if now - flushed >= 0.5:  # a small append to a local file: blocks for microseconds
            out.write("".join(lines))
            out.flush()
            lines.clear()
            flushed = now


def inject_fakes() -> None:
    from voxflow.core.settings import Settings
    from voxflow.voice import routes
    from voxflow.voice.call import run_call
    from voxflow.voice.offline import VoiceModels

    models = fake_models()  # one VAD for every call, as the offline models are shared

    async def shared_fake_models(_settings: Settings) -> VoiceModels:
        return models

    async def run_call_with_fakes(*args: Any, **kwargs: Any) -> Any:
        kwargs |= {"stt_override": MarkerSTT(), "tts_override": InstantStreamingTTS()}
        return await run_call(*args, **kwargs)

    # The names the audio WebSocket route looks up when a call starts.
    for name, replacement in (
        ("shared_models", shared_fake_models),
        ("run_call", run_call_with_fakes),
    ):
        setattr(routes, name, replacement)


class LagSampledServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lag_out: TextIO) -> None:
        super().__init__(config)
        self.lag_out = lag_out

    async def serve(self, sockets: Any = None) -> None:
        sampler = asyncio.create_task(sample_lag(self.lag_out))
        try:
            await super().serve(sockets)
        finally:
            sampler.cancel()


def main() -> None:
    port, lag_file = int(sys.argv[1]), sys.argv[2]
    if "--offline" not in sys.argv[3:]:
        inject_fakes()
    config = uvicorn.Config(
        "voxflow.api.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    with open(lag_file, "a") as lag_out:
        LagSampledServer(config, lag_out).run()


if __name__ == "__main__":
    main()
