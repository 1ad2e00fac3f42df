"""Which speech providers a call uses, by settings: offline by default, cloud when configured.

Offline (`stt`/`tts` = `auto` without a cloud key, or `local`): the shared models of
`voice.offline`. Cloud (a key set, or named explicitly): Deepgram STT and Cartesia TTS through
the livekit plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.agents import stt, tts
from livekit.agents.types import NOT_GIVEN

from voxflow.core.settings import Settings
from voxflow.voice.offline import (
    HibariTTS,
    VoiceModels,
    WhisperSTT,
    uses_local_stt,
    uses_local_tts,
)


def build_stt(settings: Settings, models: VoiceModels) -> stt.STT[Any]:
    if uses_local_stt(settings):
        return stt.StreamAdapter(stt=WhisperSTT(models.whisper), vad=models.vad)
    from livekit.plugins import deepgram

    key = settings.deepgram_api_key
    return deepgram.STT(api_key=key.get_secret_value() if key else NOT_GIVEN)


def build_tts(
    settings: Settings, models: VoiceModels, on_first_byte: Callable[[], None] | None = None
) -> tts.TTS[Any]:
    if uses_local_tts(settings):
        return HibariTTS(models, on_first_byte)
    from livekit.plugins import cartesia

    key = settings.cartesia_api_key
    return cartesia.TTS(api_key=key.get_secret_value() if key else None)
