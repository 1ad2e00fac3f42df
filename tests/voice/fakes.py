"""Instant livekit fakes (after shared/baselines/livekit/lkfakes.py): no models, no network."""

from __future__ import annotations

import numpy as np
from livekit.agents import tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


class InstantTTS(tts.TTS):  # type: ignore[type-arg]
    """Non-streaming TTS: `audio_s` seconds of a 440 Hz tone per line, instantly."""

    def __init__(self, *, sample_rate: int = 24000, audio_s: float = 0.2) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        t = np.arange(int(sample_rate * audio_s)) / sample_rate
        self.pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()
        self.lines: list[str] = []

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        self.lines.append(text)
        return InstantChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class InstantChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: InstantTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid("tts_"),
            sample_rate=engine.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        output_emitter.push(engine.pcm)
        output_emitter.flush()
