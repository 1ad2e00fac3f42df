"""The offline STT: Whisper base joined once on disk, transcripts while the caller speaks, and
the early end of a turn, with real espeak-ng speech and the real models."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from voxflow.voice.offline import VoiceModels
from voxflow.voice.whisper import (
    STT_SAMPLE_RATE,
    StreamTuning,
    WhisperSTT,
    join_whisper_base,
    load_whisper,
    transcribe_pcm16,
)

pytestmark = pytest.mark.slow
FRAME = 320  # 20 ms of 16 kHz mono
Kind = stt.SpeechEventType


DIGITS = {"4": "four", "7": "seven"}


def words(text: str) -> list[str]:
    """The words of a transcript, as the tests spell them (Whisper writes "4" or "four")."""
    plain = "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()
    return [DIGITS.get(word, word) for word in plain]


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * STT_SAMPLE_RATE) * 2)


def trimmed(pcm: bytes) -> bytes:
    """Without espeak-ng's silence around the words, so the test sets the pauses."""
    loud = np.nonzero(np.abs(np.frombuffer(pcm, np.int16).astype(np.int32)) > 300)[0]
    return pcm[int(loud[0]) * 2 : (int(loud[-1]) + 1) * 2]


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_whisper("tiny.en", tmp_path_factory.mktemp("models"))


def models_with(whisper: Any, *, min_silence_s: float) -> VoiceModels:
    from livekit.plugins import silero

    vad = silero.VAD.load(min_silence_duration=min_silence_s)
    return VoiceModels(whisper=whisper, hibari=None, vad=vad, tts_lock=threading.Lock())


async def speak(stream: stt.RecognizeStream, pcm: bytes) -> None:
    """Push `pcm` in real time, as a caller's microphone would."""
    started = time.perf_counter()
    for index, at in enumerate(range(0, len(pcm), FRAME * 2)):
        chunk = pcm[at : at + FRAME * 2].ljust(FRAME * 2, b"\0")
        stream.push_frame(rtc.AudioFrame(chunk, STT_SAMPLE_RATE, 1, FRAME))
        await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - time.perf_counter()))


async def events_until(
    stream: stt.RecognizeStream, done: Callable[[list[stt.SpeechEvent]], bool]
) -> list[stt.SpeechEvent]:
    seen: list[stt.SpeechEvent] = []

    async def collect() -> None:
        async for event in stream:
            seen.append(event)
            if done(seen):
                return

    await asyncio.wait_for(collect(), timeout=30)
    return seen


def finals(events: list[stt.SpeechEvent]) -> list[str]:
    return [e.alternatives[0].text for e in events if e.type == Kind.FINAL_TRANSCRIPT]


def ended_turns(events: list[stt.SpeechEvent]) -> int:
    return sum(e.type == Kind.END_OF_SPEECH for e in events)


def test_whisper_base_is_joined_once_on_disk_and_reused(tmp_path: Path) -> None:
    target = tmp_path / "models" / "whisper-base"
    joined = join_whisper_base(target)
    files = sorted(path.name for path in joined.iterdir())
    assert files == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    before = (joined / "model.bin").stat()

    assert join_whisper_base(target) == joined
    after = (joined / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in target.parent.iterdir()] == ["whisper-base"]  # no leftovers


def test_a_cut_short_copy_of_whisper_base_is_rebuilt(tmp_path: Path) -> None:
    target = tmp_path / "whisper-base"
    target.mkdir()
    (target / "model.bin").write_bytes(b"half a model")
    join_whisper_base(target)
    assert (target / "model.bin").stat().st_size > 100_000_000


def test_whisper_base_transcribes_speech(
    tmp_path: Path, speech: Callable[[str], bytes], whisper: Any
) -> None:
    base = load_whisper("base", tmp_path)
    models = VoiceModels(whisper=base, hibari=None, vad=None, tts_lock=threading.Lock())  # type: ignore[arg-type]
    text = transcribe_pcm16(models, speech("I would like to book a table for four people"))
    assert words(text) == [
        "i",
        "would",
        "like",
        "to",
        "book",
        "a",
        "table",
        "for",
        "four",
        "people",
    ]


async def test_speech_is_transcribed_once_the_caller_stops(
    whisper: Any, speech: Callable[[str], bytes]
) -> None:
    engine = WhisperSTT(whisper, models=models_with(whisper, min_silence_s=0.4))
    stream = engine.stream()
    talking = asyncio.create_task(
        speak(stream, silence(0.3) + speech("Tomorrow at seven please") + silence(1.0))
    )
    events = await events_until(stream, lambda seen: ended_turns(seen) == 1)
    await talking
    await stream.aclose()

    kinds = [e.type for e in events if e.type != Kind.INTERIM_TRANSCRIPT]
    assert kinds == [Kind.START_OF_SPEECH, Kind.FINAL_TRANSCRIPT, Kind.END_OF_SPEECH]
    assert words(finals(events)[0]) == ["tomorrow", "at", "seven", "please"]


async def test_a_pause_the_caller_talks_through_shows_an_interim_and_one_final(
    whisper: Any, speech: Callable[[str], bytes]
) -> None:
    # 0.25 s of silence is a pause (transcribed at once) but not an end of speech (0.6 s).
    models = models_with(whisper, min_silence_s=0.6)
    engine = WhisperSTT(whisper, models=models, tuning=StreamTuning(interim_every_s=None))
    stream = engine.stream()
    said = trimmed(speech("Yes")) + silence(0.25) + trimmed(speech("for four people"))
    talking = asyncio.create_task(speak(stream, silence(0.3) + said + silence(1.2)))
    events = await events_until(stream, lambda seen: ended_turns(seen) == 1)
    await talking
    await stream.aclose()

    interims = [e.alternatives[0].text for e in events if e.type == Kind.INTERIM_TRANSCRIPT]
    assert [words(text) for text in interims] == [["yes"]]
    assert [words(text) for text in finals(events)] == [["yes", "for", "four", "people"]]


async def test_interim_transcripts_follow_a_long_sentence(
    whisper: Any, speech: Callable[[str], bytes]
) -> None:
    engine = WhisperSTT(whisper, models=models_with(whisper, min_silence_s=0.4))
    stream = engine.stream()
    sentence = "Could you move my appointment to next Friday afternoon please"
    talking = asyncio.create_task(speak(stream, silence(0.3) + speech(sentence) + silence(1.0)))
    events = await events_until(stream, lambda seen: ended_turns(seen) == 1)
    await talking
    await stream.aclose()

    interims = [e.alternatives[0].text for e in events if e.type == Kind.INTERIM_TRANSCRIPT]
    assert len(interims) >= 2  # rough words while the caller speaks (a short window)...
    assert len(set(words(interims[-1])) & set(words(sentence))) >= 4
    assert [words(text) for text in finals(events)] == [words(sentence)]  # ...then exact ones


async def test_a_complete_answer_ends_the_turn_at_the_pause(
    whisper: Any, speech: Callable[[str], bytes]
) -> None:
    # silero alone would wait 3 s of silence: only the early end can end this turn.
    heard: list[str] = []

    def early_end(text: str) -> bool:
        heard.append(text)
        return "four" in words(text)

    models = models_with(whisper, min_silence_s=3.0)
    engine = WhisperSTT(whisper, models=models, early_end=early_end)
    stream = engine.stream()
    talking = asyncio.create_task(
        speak(stream, silence(0.3) + speech("For four people") + silence(1.5))
    )
    events = await events_until(stream, lambda seen: ended_turns(seen) == 1)
    await talking
    await stream.aclose()

    assert heard
    assert words(heard[-1]) == ["for", "four", "people"]
    assert [words(text) for text in finals(events)] == [["for", "four", "people"]]
    assert events[-1].type == Kind.END_OF_SPEECH


async def test_speaking_again_after_an_early_end_is_a_new_turn(
    whisper: Any, speech: Callable[[str], bytes]
) -> None:
    models = models_with(whisper, min_silence_s=1.5)
    tuning = StreamTuning(pause_s=0.08)
    first_only = lambda text: "people" in words(text)  # noqa: E731
    engine = WhisperSTT(whisper, models=models, early_end=first_only, tuning=tuning)
    stream = engine.stream()
    said = (
        trimmed(speech("Four people")) + silence(1.0) + trimmed(speech("Tomorrow evening please"))
    )
    talking = asyncio.create_task(speak(stream, silence(0.3) + said + silence(2.0)))
    events = await events_until(stream, lambda seen: ended_turns(seen) == 2)
    await talking
    await stream.aclose()

    assert [words(text) for text in finals(events)] == [
        ["four", "people"],
        ["tomorrow", "evening", "please"],
    ]
    kinds = [e.type for e in events if e.type != Kind.INTERIM_TRANSCRIPT]
    assert kinds == [Kind.START_OF_SPEECH, Kind.FINAL_TRANSCRIPT, Kind.END_OF_SPEECH] * 2
