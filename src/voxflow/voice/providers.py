"""Which speech providers and model a call uses, and the livekit STT/TTS built from the choice.

    choice = await choose_providers(context, call.org_id, call.id, document.settings)
    stt = build_call_stt(choice, models, settings)
    tts = build_call_tts(choice, models, settings, on_first_byte)

The workflow's `stt`/`tts` (`auto` or a name) win; `auto` falls to the operator's setting;
the operator's `auto` uses the operator's key, else the org's vault secret, else the offline
model. A cloud provider is wrapped with the offline one (when loaded) in livekit's
`FallbackAdapter`: a failed cloud attempt is retried once, then the offline model answers and
the adapter emits `stt_availability_changed` / `tts_availability_changed`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import aiohttp
import structlog
from livekit.agents import APIConnectionError, stt, tts
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.plugins import cartesia, deepgram
from livekit.plugins.cartesia import tts as cartesia_tts
from livekit.plugins.deepgram import stt as deepgram_stt
from pydantic import SecretStr

from voxflow.core.context import AppContext
from voxflow.core.errors import Conflict, InvalidInput
from voxflow.core.settings import Settings
from voxflow.dsl.schema import WorkflowSettings
from voxflow.providers.llm import LLM
from voxflow.providers.registry import (
    ProviderKeyMissing,
    org_llm,
)
from voxflow.vault.runtime import CallSecrets
from voxflow.voice.offline import HibariTTS, VoiceModels
from voxflow.voice.piper import PIPER_MISSING, PiperTTS, piper_installed
from voxflow.voice.whisper import WhisperSTT

log = structlog.get_logger("voxflow.voice")

DEEPGRAM_SECRET = "DEEPGRAM_API_KEY"  # noqa: S105 (a secret's name)
CARTESIA_SECRET = "CARTESIA_API_KEY"  # noqa: S105 (a secret's name)
LOCAL_NAMES = frozenset({"local", "offline"})
PIPER = "piper"
# livekit resets a stream's retry budget when an attempt outlived the connect timeout, so a
# connect that hangs for the whole timeout would be retried forever: give up a little earlier.
CONNECT_SHARE_OF_TIMEOUT = 0.8

SttName = Literal["local", "deepgram"]
# "local" is hibari's bundled voice; "piper" the optional extra's (`voice.piper`).
TtsName = Literal["local", "cartesia", "piper"]


@dataclass(frozen=True)
class ProviderChoice:
    """The providers of one call. Keys stay out of repr (and so out of logs and errors)."""

    stt: SttName
    tts: TtsName
    stt_key: str | None = field(default=None, repr=False)
    tts_key: str | None = field(default=None, repr=False)
    llm: LLM | None = field(default=None, repr=False)
    # The workflow's BCP 47 tag: what the cloud STT listens for and the cloud TTS speaks.
    language: str = "en"


class ProviderUnavailable(Conflict):
    slug = "provider-unavailable"


@dataclass(frozen=True)
class _CloudWanted:
    """A cloud provider the settings ask for, before its key is found."""

    name: str
    secret: str
    explicit: bool  # named (not `auto`): no key anywhere is an error, not the offline model
    operator_key: str | None = field(repr=False)


async def choose_providers(
    context: AppContext, org_id: str, call_id: str, document_settings: WorkflowSettings
) -> ProviderChoice:
    """The call's STT, TTS and LLM; each org secret they need is read once for the call."""
    settings = context.settings
    stt_wanted, tts_wanted = _speech_wanted(document_settings, settings)
    names = [
        wanted.secret
        for wanted in (stt_wanted, tts_wanted)
        if wanted is not None and wanted.operator_key is None
    ]
    org_secrets = (
        await CallSecrets(context, org_id, call_id).resolve_present(names) if names else {}
    )
    stt_key = _key(stt_wanted, org_secrets)
    tts_key = _key(tts_wanted, org_secrets)
    # The model is the engine's: `org_llm` reads its key once per call for text and voice alike.
    llm = await org_llm(context, org_id, call_id, document_settings.llm)
    choice = ProviderChoice(
        stt="deepgram" if stt_key else "local",
        tts="cartesia" if tts_key else _offline_voice(document_settings.tts, settings),
        stt_key=stt_key,
        tts_key=tts_key,
        llm=llm,
        language=document_settings.language,
    )
    log.info(
        "voice_providers_chosen",
        call_id=call_id,
        stt=choice.stt,
        tts=choice.tts,
        llm=getattr(llm, "name", None),
        org_secrets=sorted(org_secrets),  # the names read, never the values
    )
    return choice


def _speech_wanted(
    document_settings: WorkflowSettings, settings: Settings
) -> tuple[_CloudWanted | None, _CloudWanted | None]:
    """The cloud STT and TTS the workflow and operator settings ask for (None: offline)."""
    stt_wanted = _cloud_wanted(
        "stt",
        document_settings.stt,
        settings.stt,
        cloud="deepgram",
        secret=DEEPGRAM_SECRET,
        operator_key=_reveal(settings.deepgram_api_key),
    )
    tts_wanted = _cloud_wanted(
        "tts",
        document_settings.tts,
        settings.tts,
        cloud="cartesia",
        secret=CARTESIA_SECRET,
        operator_key=_reveal(settings.cartesia_api_key),
        offline_names=LOCAL_NAMES | {PIPER},
    )
    return stt_wanted, tts_wanted


def _cloud_wanted(
    kind: str,
    workflow_value: str,
    operator_value: str,
    *,
    cloud: str,
    secret: str,
    operator_key: str | None,
    offline_names: frozenset[str] = LOCAL_NAMES,
) -> _CloudWanted | None:
    name = workflow_value.strip().lower()
    if name not in offline_names | {"auto", cloud}:
        known = ", ".join(["auto", *sorted(offline_names - {"offline"}), cloud])
        raise InvalidInput(f"settings.{kind}: unknown provider {workflow_value!r} (one of {known})")
    if name == "auto":
        name = operator_value
    if name in offline_names:
        return None
    explicit = name == cloud  # by the workflow, or by the operator under the workflow's `auto`
    return _CloudWanted(name=cloud, secret=secret, explicit=explicit, operator_key=operator_key)


def _offline_voice(workflow_value: str, settings: Settings) -> TtsName:
    """hibari, unless the workflow or the operator names piper.

    The operator's piper is the process's offline voice (hibari is then not even loaded), so
    it also answers a workflow's `local`.
    """
    if PIPER not in (workflow_value.strip().lower(), settings.tts):
        return "local"
    if not piper_installed():
        raise ProviderUnavailable(PIPER_MISSING)
    return "piper"


def _reveal(key: SecretStr | None) -> str | None:
    return key.get_secret_value() if key else None


def _key(wanted: _CloudWanted | None, org_secrets: Mapping[str, str]) -> str | None:
    if wanted is None:
        return None
    key: str | None = wanted.operator_key or org_secrets.get(wanted.secret)
    if not key and wanted.explicit:
        raise ProviderKeyMissing(
            f"This call needs {wanted.name.capitalize()} but no API key is set: add the "
            f"secret {wanted.secret} under Secrets (or set VOXFLOW_{wanted.secret})."
        )
    return key or None


def build_call_stt(
    choice: ProviderChoice,
    models: VoiceModels,
    settings: Settings,
    *,
    http_session: aiohttp.ClientSession | None = None,
) -> stt.STT[Any]:
    """The call's STT: offline streaming Whisper, Deepgram, or Deepgram falling back to Whisper.

    Without `http_session` the plugin uses livekit's `http_context` (set in a worker job;
    elsewhere wrap the call in `livekit.agents.utils.http_context.open()`).
    """
    if choice.stt == "local":
        if models.whisper is None:
            raise ProviderUnavailable("The offline STT model is not loaded in this process.")
        # Streaming: it transcribes while the caller speaks and ends the turns itself.
        return WhisperSTT(models.whisper, models=models)
    # As a fallback, whole utterances: livekit's adapter segments them with silero.
    local = (
        stt.StreamAdapter(stt=WhisperSTT(models.whisper), vad=models.vad)
        if models.whisper is not None
        else None
    )
    assert choice.stt_key is not None
    cloud = _DeepgramSTT(
        api_key=choice.stt_key,
        model=settings.deepgram_model,
        language=choice.language,
        base_url=settings.deepgram_base_url,
        http_session=http_session,
    )
    if local is None:
        return cloud
    return stt.FallbackAdapter(
        [cloud, local],
        attempt_timeout=settings.voice_cloud_timeout_s,
        max_retry_per_stt=1,
        retry_interval=0.5,
    )


def build_call_tts(
    choice: ProviderChoice,
    models: VoiceModels,
    settings: Settings,
    on_first_byte: Callable[[], None] | None = None,
    *,
    http_session: aiohttp.ClientSession | None = None,
) -> tts.TTS[Any]:
    """The call's TTS: offline hibari or piper, Cartesia, or Cartesia falling back to offline.

    `on_first_byte` fires at the first audio of each synthesis, whichever provider made it.
    """
    if choice.tts == PIPER:
        if not piper_installed():
            raise ProviderUnavailable(PIPER_MISSING)
        return PiperTTS(on_first_byte)
    local: tts.TTS[Any] | None = None
    if models.hibari is not None:
        local = HibariTTS(models, on_first_byte)
    elif settings.tts == PIPER and piper_installed():
        local = PiperTTS(on_first_byte)
    if choice.tts == "local":
        if local is None:
            raise ProviderUnavailable("The offline TTS model is not loaded in this process.")
        return local
    assert choice.tts_key is not None
    cloud = _CartesiaTTS(
        api_key=choice.tts_key,
        model=settings.cartesia_model,
        # Cartesia names languages by their primary subtag ("es", not "es-MX").
        language=choice.language.split("-")[0].lower(),
        base_url=settings.cartesia_base_url,
        http_session=http_session,
        on_first_byte=on_first_byte,
        attempt_timeout=settings.voice_cloud_timeout_s,
        **({"voice": settings.cartesia_voice} if settings.cartesia_voice else {}),
    )
    if local is None:
        return cloud
    # Cartesia and hibari speak 24 kHz mono; the adapter resamples piper's 22.05 kHz.
    return tts.FallbackAdapter([cloud, local], max_retry_per_tts=1)


def operator_choice(settings: Settings) -> ProviderChoice:
    """The providers by operator settings alone (no org secrets, no model)."""
    defaults = WorkflowSettings()
    stt_wanted, tts_wanted = _speech_wanted(defaults, settings)
    stt_key, tts_key = _key(stt_wanted, {}), _key(tts_wanted, {})
    return ProviderChoice(
        stt="deepgram" if stt_key else "local",
        tts="cartesia" if tts_key else _offline_voice(defaults.tts, settings),
        stt_key=stt_key,
        tts_key=tts_key,
    )


def build_stt(settings: Settings, models: VoiceModels) -> stt.STT[Any]:
    """Kept for callers that do not choose per call yet: `build_call_stt` by operator settings."""
    return build_call_stt(operator_choice(settings), models, settings)


def build_tts(
    settings: Settings, models: VoiceModels, on_first_byte: Callable[[], None] | None = None
) -> tts.TTS[Any]:
    """Kept for callers that do not choose per call yet: `build_call_tts` by operator settings."""
    return build_call_tts(operator_choice(settings), models, settings, on_first_byte)


def offline_whisper(recognizer: stt.STT[Any]) -> WhisperSTT | None:
    """The offline recognizer inside the call's STT (alone, stream-adapted or as fallback)."""
    if isinstance(recognizer, stt.FallbackAdapter):
        for instance in recognizer._stt_instances:
            found = offline_whisper(instance)
            if found is not None:
                return found
        return None
    if isinstance(recognizer, stt.StreamAdapter):
        recognizer = recognizer.wrapped_stt
    return recognizer if isinstance(recognizer, WhisperSTT) else None


class _DeepgramSTT(deepgram.STT):
    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> deepgram_stt.SpeechStream:
        stream = _DeepgramStream(
            stt=self,
            conn_options=conn_options,
            opts=self._sanitize_options(language=language),
            api_key=self._api_key,
            http_session=self._ensure_session(),
            base_url=self._opts.endpoint_url,
        )
        self._streams.add(stream)
        return stream


class _DeepgramStream(deepgram_stt.SpeechStream):
    async def _connect_ws(self) -> aiohttp.ClientWebSocketResponse:
        limit = self._conn_options.timeout * CONNECT_SHARE_OF_TIMEOUT
        try:
            return await asyncio.wait_for(super()._connect_ws(), limit)
        except TimeoutError:
            raise APIConnectionError("failed to connect to deepgram (timed out)") from None


class _CartesiaTTS(cartesia.TTS):
    """Cartesia with a hook on each synthesis's first audio (the call's turn timings)."""

    def __init__(
        self,
        *,
        on_first_byte: Callable[[], None] | None,
        attempt_timeout: float,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.on_first_byte = on_first_byte
        self._attempt_timeout = attempt_timeout

    def _attempt_options(self, conn_options: APIConnectOptions) -> APIConnectOptions:
        # The session's timeout is the whole request's; one Cartesia attempt gets less, so a
        # silent socket falls back to the offline voice in time to matter.
        return dataclasses.replace(
            conn_options, timeout=min(conn_options.timeout, self._attempt_timeout)
        )

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> cartesia_tts.ChunkedStream:
        return _TimedChunkedStream(
            tts=self, input_text=text, conn_options=self._attempt_options(conn_options)
        )

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> cartesia_tts.SynthesizeStream:
        stream = _TimedSynthesizeStream(tts=self, conn_options=self._attempt_options(conn_options))
        self._streams.add(stream)
        return stream


class _FirstByteEmitter:
    """An `AudioEmitter` that reports its first pushed audio."""

    def __init__(self, emitter: tts.AudioEmitter, on_first_byte: Callable[[], None]) -> None:
        self._emitter = emitter
        self._on_first_byte: Callable[[], None] | None = on_first_byte

    def push(self, data: bytes) -> None:
        if data and self._on_first_byte is not None:
            self._on_first_byte()
            self._on_first_byte = None
        self._emitter.push(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._emitter, name)


def _timed(stream: tts.ChunkedStream | tts.SynthesizeStream, emitter: tts.AudioEmitter) -> Any:
    hook = cast(_CartesiaTTS, stream._tts).on_first_byte
    return emitter if hook is None else _FirstByteEmitter(emitter, hook)


class _TimedChunkedStream(cartesia_tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        await super()._run(_timed(self, output_emitter))


class _TimedSynthesizeStream(cartesia_tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        await super()._run(_timed(self, output_emitter))
