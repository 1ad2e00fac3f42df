"""Cloud speech providers at the network boundary, and which providers a call gets.

The livekit Deepgram and Cartesia plugins run unchanged against local fakes of their APIs
(`cloud_fakes`); the offline fallback is the real Whisper / hibari.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import httpx
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, tts
from livekit.plugins import silero
from structlog.testing import capture_logs

from support import OrgHandle, make_settings
from voice.cloud_fakes import Failure, FakeCartesia, FakeDeepgram, fake_cartesia, fake_deepgram
from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.dsl.schema import WorkflowSettings
from voxflow.providers.registry import ProviderKeyMissing, org_llm
from voxflow.voice.offline import VoiceModels, shared_models
from voxflow.voice.providers import (
    ProviderChoice,
    build_call_stt,
    build_call_tts,
    build_stt,
    build_tts,
    choose_providers,
    offline_whisper,
    operator_choice,
)

DEEPGRAM_KEY = "dg-test-3b1f0c9e77a4"
CARTESIA_KEY = "sk_car_test_51d2e8aa90"
SENTENCE = "What are your opening hours"
GREETING = "Buongiorno! How can I help you today?"
FRAME_SAMPLES = 320  # 20 ms at 16 kHz


@pytest.fixture
async def deepgram() -> AsyncIterator[FakeDeepgram]:
    async with fake_deepgram(transcript="One large margherita, please.") as fake:
        yield fake


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesia]:
    async with fake_cartesia() as fake:
        yield fake


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def cloud_only_models() -> VoiceModels:
    """No offline model loaded: the cloud provider is used alone."""
    return VoiceModels(whisper=None, hibari=None, vad=silero.VAD.load(), tts_lock=threading.Lock())


def cloud_settings(deepgram: FakeDeepgram | None, cartesia: FakeCartesia | None) -> Settings:
    urls: dict[str, object] = {}
    if deepgram is not None:
        urls["deepgram_base_url"] = f"{deepgram.base_url}/v1/listen"
    if cartesia is not None:
        urls["cartesia_base_url"] = cartesia.base_url
    return make_settings("sqlite+aiosqlite:///unused.db", voice_cloud_timeout_s=1.0, **urls)


DEEPGRAM_CHOICE = ProviderChoice(stt="deepgram", tts="local", stt_key=DEEPGRAM_KEY)
CARTESIA_CHOICE = ProviderChoice(stt="local", tts="cartesia", tts_key=CARTESIA_KEY)


def audio_frames(pcm: bytes) -> Iterator[rtc.AudioFrame]:
    size = FRAME_SAMPLES * 2
    for offset in range(0, len(pcm), size):
        chunk = pcm[offset : offset + size].ljust(size, b"\x00")
        yield rtc.AudioFrame(chunk, 16000, 1, FRAME_SAMPLES)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(16000 * seconds)


async def recognize(stream: stt.RecognizeStream, pcm: bytes) -> list[stt.SpeechEvent]:
    for frame in audio_frames(pcm + silence(1.0)):
        stream.push_frame(frame)
    stream.end_input()
    async with asyncio.timeout(60):
        return [event async for event in stream]


def finals(events: list[stt.SpeechEvent]) -> list[str]:
    return [
        event.alternatives[0].text
        for event in events
        if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives
    ]


async def speak(stream: tts.SynthesizeStream, text: str) -> list[rtc.AudioFrame]:
    stream.push_text(text)
    stream.end_input()
    async with asyncio.timeout(60):
        return [audio.frame async for audio in stream]


def seconds(frames: list[rtc.AudioFrame]) -> float:
    return sum(frame.samples_per_channel / frame.sample_rate for frame in frames)


class Availability:
    """Records an adapter's availability changes, and how many attempts the fake had seen."""

    def __init__(self, adapter: Any, event: str, fake: FakeDeepgram | FakeCartesia) -> None:
        self.changes: list[tuple[str, bool, int]] = []
        self.changed = asyncio.Event()

        def on_change(change: Any) -> None:
            provider = getattr(change, "stt", None) or change.tts
            self.changes.append((provider.provider, change.available, len(fake.attempts)))
            self.changed.set()

        adapter.on(event, on_change)


# --- Deepgram STT ----------------------------------------------------------------------------


async def test_deepgram_turns_real_speech_into_a_final_transcript(
    deepgram: FakeDeepgram,
    cloud_only_models: VoiceModels,
    http_session: aiohttp.ClientSession,
    speech: Callable[[str], bytes],
) -> None:
    settings = cloud_settings(deepgram, None)
    recognizer = build_call_stt(
        DEEPGRAM_CHOICE, cloud_only_models, settings, http_session=http_session
    )
    pcm = speech(SENTENCE)

    events = await recognize(recognizer.stream(), pcm)

    kinds = [event.type for event in events]
    assert finals(events) == ["One large margherita, please."]
    assert stt.SpeechEventType.START_OF_SPEECH in kinds
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    assert kinds.index(stt.SpeechEventType.FINAL_TRANSCRIPT) < kinds.index(
        stt.SpeechEventType.END_OF_SPEECH
    )
    assert deepgram.heard_speech
    assert deepgram.audio_bytes >= len(pcm)
    (handshake,) = deepgram.attempts
    assert handshake.headers["Authorization"] == f"Token {DEEPGRAM_KEY}"
    assert handshake.query["model"] == "nova-3"
    assert handshake.query["encoding"] == "linear16"
    assert handshake.query["sample_rate"] == "16000"
    assert deepgram.control[-1] == "CloseStream"
    await recognizer.aclose()


async def test_deepgram_listens_for_the_workflows_language(
    deepgram: FakeDeepgram,
    cloud_only_models: VoiceModels,
    http_session: aiohttp.ClientSession,
    speech: Callable[[str], bytes],
) -> None:
    spanish = dataclasses.replace(DEEPGRAM_CHOICE, language="es")
    recognizer = build_call_stt(
        spanish, cloud_only_models, cloud_settings(deepgram, None), http_session=http_session
    )

    await recognize(recognizer.stream(), speech(SENTENCE))

    (handshake,) = deepgram.attempts
    assert handshake.query["language"] == "es"
    await recognizer.aclose()


# --- Cartesia TTS ----------------------------------------------------------------------------


async def test_cartesia_streams_audio_frames_and_reports_the_first_byte(
    cartesia: FakeCartesia, cloud_only_models: VoiceModels, http_session: aiohttp.ClientSession
) -> None:
    first_bytes: list[int] = []
    synthesizer = build_call_tts(
        CARTESIA_CHOICE,
        cloud_only_models,
        cloud_settings(None, cartesia),
        lambda: first_bytes.append(len(cartesia.transcripts)),
        http_session=http_session,
    )

    frames = await speak(synthesizer.stream(), GREETING)

    assert frames
    assert {frame.sample_rate for frame in frames} == {24000}
    assert seconds(frames) == pytest.approx(cartesia.audio_bytes_sent / 2 / 24000, abs=0.02)
    assert "".join(cartesia.transcripts).split() == GREETING.split()
    assert first_bytes == [1]  # once, when the first sentence's audio came back
    (handshake,) = cartesia.attempts
    assert handshake.path == "/tts/websocket"
    assert handshake.headers["X-API-Key"] == CARTESIA_KEY
    assert cartesia.requests[0]["model_id"] == "sonic-3"
    assert cartesia.requests[0]["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 24000,
    }
    await synthesizer.aclose()


async def test_cartesia_speaks_the_workflows_language(
    cartesia: FakeCartesia, cloud_only_models: VoiceModels, http_session: aiohttp.ClientSession
) -> None:
    mexican = dataclasses.replace(CARTESIA_CHOICE, language="es-MX")
    synthesizer = build_call_tts(
        mexican, cloud_only_models, cloud_settings(None, cartesia), http_session=http_session
    )

    await speak(synthesizer.stream(), "Hola, ¿en qué puedo ayudarle?")

    assert cartesia.requests[0]["language"] == "es"
    await synthesizer.aclose()


async def test_cartesia_synthesizes_a_whole_line_over_the_bytes_endpoint(
    cartesia: FakeCartesia, cloud_only_models: VoiceModels, http_session: aiohttp.ClientSession
) -> None:
    first_bytes: list[str] = []
    synthesizer = build_call_tts(
        CARTESIA_CHOICE,
        cloud_only_models,
        cloud_settings(None, cartesia),
        lambda: first_bytes.append("first"),
        http_session=http_session,
    )

    async with asyncio.timeout(30):
        frames = [audio.frame async for audio in synthesizer.synthesize("Your table is booked.")]

    assert seconds(frames) == pytest.approx(cartesia.audio_bytes_sent / 2 / 24000, abs=0.02)
    assert cartesia.transcripts == ["Your table is booked."]
    assert [attempt.path for attempt in cartesia.attempts] == ["/tts/bytes"]
    assert first_bytes == ["first"]
    await synthesizer.aclose()


# --- failures: one retry, then the offline model ---------------------------------------------


@pytest.fixture(scope="session")
async def offline_models() -> VoiceModels:
    return await shared_models(make_settings("sqlite+aiosqlite:///unused.db"))


FAILURES: list[Failure] = ["http_500", "close", "hang"]


@pytest.mark.slow
@pytest.mark.parametrize("failure", FAILURES)
async def test_a_failing_deepgram_is_retried_once_then_whisper_transcribes(
    failure: Failure,
    deepgram: FakeDeepgram,
    offline_models: VoiceModels,
    http_session: aiohttp.ClientSession,
    speech: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    deepgram.failure = failure
    recognizer = build_call_stt(
        DEEPGRAM_CHOICE, offline_models, cloud_settings(deepgram, None), http_session=http_session
    )
    availability = Availability(recognizer, "stt_availability_changed", deepgram)
    stream = recognizer.stream()
    # The turn's audio goes to whichever provider serves once Deepgram has been given up.
    stream.push_frame(next(audio_frames(silence(0.02))))
    async with asyncio.timeout(30):
        await availability.changed.wait()

    events = await recognize(stream, speech(SENTENCE))

    assert availability.changes[0] == ("Deepgram", False, 2)  # the attempt and one retry
    assert "opening hours" in " ".join(finals(events)).lower()
    assert not any("margherita" in text for text in finals(events))
    assert offline_whisper(recognizer) is not None
    await recognizer.aclose()
    assert DEEPGRAM_KEY not in caplog.text  # livekit's own logs of the failure


@pytest.mark.slow
@pytest.mark.parametrize("failure", FAILURES)
async def test_a_failing_cartesia_is_retried_once_then_hibari_speaks(
    failure: Failure,
    cartesia: FakeCartesia,
    offline_models: VoiceModels,
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cartesia.failure = failure
    first_bytes: list[str] = []
    synthesizer = build_call_tts(
        CARTESIA_CHOICE,
        offline_models,
        cloud_settings(None, cartesia),
        lambda: first_bytes.append("first"),
        http_session=http_session,
    )
    availability = Availability(synthesizer, "tts_availability_changed", cartesia)

    frames = await speak(synthesizer.stream(), "Sorry, could you say that again?")

    assert availability.changes[0] == ("Cartesia", False, 2)  # the attempt and one retry
    assert seconds(frames) > 0.5
    assert cartesia.audio_bytes_sent == 0  # every frame is hibari's
    assert first_bytes == ["first"]
    await synthesizer.aclose()
    assert CARTESIA_KEY not in caplog.text  # livekit's own logs of the failure


async def test_without_the_offline_model_a_failing_cloud_provider_is_an_error(
    cartesia: FakeCartesia, cloud_only_models: VoiceModels, http_session: aiohttp.ClientSession
) -> None:
    cartesia.failure = "http_500"
    synthesizer = build_call_tts(
        CARTESIA_CHOICE,
        cloud_only_models,
        cloud_settings(None, cartesia),
        http_session=http_session,
    )
    stream = synthesizer.stream(conn_options=APIConnectOptions(max_retry=1, timeout=1.0))

    with pytest.raises(Exception, match="500"):
        await speak(stream, "Hello.")
    assert len(cartesia.attempts) == 2
    await synthesizer.aclose()


# --- which providers a call gets -------------------------------------------------------------

OPERATOR_KEY = "op-key-1c7e55d0a2"
ORG_KEY = "org-key-90ab4f13e6"


async def add_secret(client: httpx.AsyncClient, org: OrgHandle, name: str, value: str) -> None:
    response = await client.post(
        "/v1/secrets", json={"name": name, "value": value}, headers=org.headers
    )
    assert response.status_code == 201, response.text


async def secret_reads(client: httpx.AsyncClient, org: OrgHandle) -> list[tuple[str, str]]:
    response = await client.get("/v1/audit", params={"action": "secret.read"}, headers=org.headers)
    assert response.status_code == 200, response.text
    return [(item["actor_id"], item["target_name"]) for item in response.json()["items"]]


def operator(context: AppContext, **settings: Any) -> AppContext:
    """The same database and vault under other operator settings (and empty caches)."""
    changed = make_settings(context.settings.database_url, **settings)
    return replace(context, settings=changed, extras={"vault": context.extras.get("vault")})


# (kind, cloud, secret): the same rules hold for speech-to-text and text-to-speech.
KINDS = [("stt", "deepgram", "DEEPGRAM_API_KEY"), ("tts", "cartesia", "CARTESIA_API_KEY")]
# workflow's setting, operator's setting, operator key?, org secret? -> provider, key used
PRECEDENCE = [
    ("auto", "auto", False, False, "local", None),
    ("auto", "auto", True, False, "cloud", OPERATOR_KEY),
    ("auto", "auto", False, True, "cloud", ORG_KEY),
    ("auto", "auto", True, True, "cloud", OPERATOR_KEY),
    ("auto", "local", True, True, "local", None),
    ("local", "auto", True, True, "local", None),
    ("local", "cloud", True, True, "local", None),
    ("cloud", "local", False, True, "cloud", ORG_KEY),
    ("cloud", "auto", True, False, "cloud", OPERATOR_KEY),
    ("auto", "cloud", False, True, "cloud", ORG_KEY),
]


@pytest.mark.parametrize(("kind", "cloud", "secret"), KINDS)
@pytest.mark.parametrize(
    ("workflow", "operator_setting", "operator_key", "org_secret", "expected", "key"), PRECEDENCE
)
async def test_the_workflow_wins_auto_falls_to_the_operator_then_the_org_secret(
    client: httpx.AsyncClient,
    org: OrgHandle,
    context: AppContext,
    kind: str,
    cloud: str,
    secret: str,
    workflow: str,
    operator_setting: str,
    operator_key: bool,
    org_secret: bool,
    expected: str,
    key: str | None,
) -> None:
    def named(value: str) -> str:
        return cloud if value == "cloud" else value

    if org_secret:
        await add_secret(client, org, secret, ORG_KEY)
    settings: dict[str, Any] = {kind: named(operator_setting)}
    if operator_key:
        settings[f"{cloud}_api_key"] = OPERATOR_KEY
    document = WorkflowSettings.model_validate({kind: named(workflow)})

    with capture_logs() as logs:
        choice = await choose_providers(operator(context, **settings), org.id, "call_p1", document)

    assert getattr(choice, kind) == named(expected)
    assert getattr(choice, f"{kind}_key") == key
    assert ORG_KEY not in repr(choice)
    assert OPERATOR_KEY not in repr(choice)
    assert ORG_KEY not in repr(logs)
    assert OPERATOR_KEY not in repr(logs)
    # The org's secret is read (and audited) only when it is the key the call uses.
    expected_reads = [("call_p1", secret)] if key == ORG_KEY else []
    assert await secret_reads(client, org) == expected_reads


@pytest.mark.parametrize(("kind", "cloud", "secret"), KINDS)
@pytest.mark.parametrize("named_by", ["workflow", "operator"])
async def test_a_named_cloud_provider_without_any_key_says_which_secret_to_add(
    org: OrgHandle, context: AppContext, kind: str, cloud: str, secret: str, named_by: str
) -> None:
    settings = {kind: cloud} if named_by == "operator" else {}
    document = WorkflowSettings.model_validate({kind: cloud} if named_by == "workflow" else {})

    with pytest.raises(ProviderKeyMissing) as missing:
        await choose_providers(operator(context, **settings), org.id, "call_p2", document)

    assert missing.value.status == 409
    assert f"add the secret {secret} under Secrets" in missing.value.detail


async def test_one_call_reads_each_org_secret_once_for_all_its_providers(
    client: httpx.AsyncClient, org: OrgHandle, context: AppContext
) -> None:
    for name in ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "OPENAI_API_KEY"):
        await add_secret(client, org, name, f"{ORG_KEY}-{name}")
    ctx = operator(context)
    document = WorkflowSettings(language="es")

    choice = await choose_providers(ctx, org.id, "call_p4", document)
    again = [await org_llm(ctx, org.id, "call_p4", document.llm) for _turn in range(3)]

    assert (choice.stt, choice.tts, choice.language) == ("deepgram", "cartesia", "es")
    assert choice.llm is not None
    assert all(llm is choice.llm for llm in again)
    assert sorted(await secret_reads(client, org)) == [
        ("call_p4", "CARTESIA_API_KEY"),
        ("call_p4", "DEEPGRAM_API_KEY"),
        ("call_p4", "OPENAI_API_KEY"),
    ]


def test_operator_settings_alone_still_choose_for_callers_without_a_workflow(
    cloud_only_models: VoiceModels,
) -> None:
    keyed = make_settings(
        "sqlite+aiosqlite:///unused.db", deepgram_api_key=DEEPGRAM_KEY, tts="local"
    )

    assert operator_choice(make_settings("sqlite+aiosqlite:///unused.db")) == ProviderChoice(
        stt="local", tts="local"
    )
    assert operator_choice(keyed) == ProviderChoice(
        stt="deepgram", tts="local", stt_key=DEEPGRAM_KEY
    )
    assert build_stt(keyed, cloud_only_models).provider == "Deepgram"
    with pytest.raises(ProviderKeyMissing, match="CARTESIA_API_KEY"):
        build_tts(make_settings("sqlite+aiosqlite:///unused.db", tts="cartesia"), cloud_only_models)
