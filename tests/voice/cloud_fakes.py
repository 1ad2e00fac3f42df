"""Local stand-ins for Deepgram and Cartesia, speaking the wire protocols the livekit plugins use.

Each runs an aiohttp server on 127.0.0.1, so the plugins' real connection, framing, parsing and
retry code runs. The message shapes are Deepgram's live transcription API (`/v1/listen`:
SpeechStarted, interim and final Results, UtteranceEnd, Metadata) and Cartesia's TTS API
(`/tts/websocket` chunk/timestamps/done messages per context, `/tts/bytes` raw PCM).

`failure` makes every request fail one way: "http_500" (the handshake or request is refused),
"close" (the socket is accepted, then closed without an answer) or "hang" (no answer at all).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from aiohttp import WSMsgType, web

Failure = Literal["http_500", "close", "hang"]
SPEECH_RMS = 300.0  # int16 RMS above which a chunk counts as speech (espeak speech is ~3000)
END_OF_SPEECH_S = 0.4  # silence, in audio time, that ends an utterance (Deepgram endpointing)


@dataclass
class Handshake:
    """One connection attempt as the provider saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Server:
    failure: Failure | None = None
    attempts: list[Handshake] = field(default_factory=list)
    base_url: str = ""
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, request: web.Request) -> None:
        self.attempts.append(
            Handshake(path=request.path, query=dict(request.query), headers=dict(request.headers))
        )

    async def _refuse_or_hang(self) -> web.Response | None:
        if self.failure == "http_500":
            return web.json_response({"err_code": "INTERNAL", "err_msg": "boom"}, status=500)
        if self.failure == "hang":
            await self._release.wait()
            return web.Response(status=503)
        return None


@dataclass
class FakeDeepgram(_Server):
    """Transcribes any utterance as `transcript`: speech is found by the audio's energy."""

    transcript: str = "I'd like a large pizza please."
    audio_bytes: int = 0
    heard_speech: bool = False
    control: list[str] = field(default_factory=list)

    async def listen(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        refused = await self._refuse_or_hang()
        if refused is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if self.failure == "close":
            await ws.close(code=1011, message=b"internal error")
            return ws
        utterance = _Utterance(self, ws, request_id=str(uuid.uuid4()))
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                self.audio_bytes += len(message.data)
                await utterance.feed(message.data)
            elif message.type == WSMsgType.TEXT:
                kind = json.loads(message.data)["type"]
                self.control.append(kind)
                if kind == "Finalize":
                    await utterance.finish(from_finalize=True)
                elif kind == "CloseStream":
                    await utterance.finish(from_finalize=True)
                    await ws.send_json(utterance.metadata())
                    await ws.close()
        return ws


class _Utterance:
    """Deepgram's view of the audio so far: when speech started, when it fell silent."""

    def __init__(self, fake: FakeDeepgram, ws: web.WebSocketResponse, request_id: str) -> None:
        self.fake, self.ws, self.request_id = fake, ws, request_id
        self.seconds = 0.0
        self.started_at: float | None = None
        self.last_voice_at = 0.0
        self.interim_sent = False

    async def feed(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, np.int16).astype(np.float64)
        loud = len(samples) > 0 and math.sqrt(float(np.mean(samples**2))) > SPEECH_RMS
        self.seconds += len(samples) / 16000
        if loud:
            self.fake.heard_speech = True
            self.last_voice_at = self.seconds
            if self.started_at is None:
                self.started_at = self.seconds
                await self.ws.send_json(
                    {"type": "SpeechStarted", "channel": [0], "timestamp": self.seconds}
                )
        if self.started_at is None:
            return
        if not self.interim_sent and self.seconds - self.started_at > 0.5:
            self.interim_sent = True
            first_word = self.fake.transcript.split()[0]
            await self.ws.send_json(self.results(first_word, is_final=False, speech_final=False))
        if self.seconds - self.last_voice_at >= END_OF_SPEECH_S:
            await self.finish(from_finalize=False)

    async def finish(self, *, from_finalize: bool) -> None:
        if self.started_at is None:
            return
        final = self.results(self.fake.transcript, is_final=True, speech_final=True)
        final["from_finalize"] = from_finalize
        await self.ws.send_json(final)
        await self.ws.send_json(
            {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_voice_at}
        )
        self.started_at, self.interim_sent = None, False

    def results(self, transcript: str, *, is_final: bool, speech_final: bool) -> dict[str, Any]:
        start = self.started_at or 0.0
        words = transcript.split()
        step = max(self.last_voice_at - start, 0.1) / max(len(words), 1)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.seconds - start, 3),
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript,
                        "confidence": 0.98,
                        "words": [
                            {
                                "word": word.strip(".,!?").lower(),
                                "start": round(start + index * step, 3),
                                "end": round(start + (index + 1) * step, 3),
                                "confidence": 0.98,
                                "punctuated_word": word,
                            }
                            for index, word in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {
                    "name": "general-nova-3",
                    "version": "2024-12-20.0",
                    "arch": "nova-3",
                },
                "model_uuid": "40bd3654-e622-47c4-a111-63a61b23bfb8",
            },
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": "2026-11-26T06:00:00.000Z",
            "duration": round(self.seconds, 3),
            "channels": 1,
            "models": ["40bd3654-e622-47c4-a111-63a61b23bfb8"],
            "model_info": {},
        }


@dataclass
class FakeCartesia(_Server):
    """Speaks every transcript as a tone, `seconds_per_char` long, in the requested format."""

    seconds_per_char: float = 0.01
    transcripts: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes_sent: int = 0

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        refused = await self._refuse_or_hang()
        if refused is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            if self.failure == "close":
                await ws.close(code=1011, message=b"internal error")
                break
            body = json.loads(message.data)
            self.requests.append(body)
            context_id = body["context_id"]
            text = body.get("transcript", "")
            if text.strip():
                self.transcripts.append(text)
                audio = self._tone(text, body["output_format"]["sample_rate"])
                self.audio_bytes_sent += len(audio)
                for offset in range(0, len(audio), 4800):
                    await ws.send_json(
                        {
                            "type": "chunk",
                            "data": base64.b64encode(audio[offset : offset + 4800]).decode(),
                            "done": False,
                            "status_code": 206,
                            "step_time": 12.5,
                            "context_id": context_id,
                        }
                    )
                if body.get("add_timestamps"):
                    await ws.send_json(self._timestamps(text, context_id))
            if body.get("continue") is False:
                await ws.send_json(
                    {"type": "done", "done": True, "status_code": 206, "context_id": context_id}
                )
        return ws

    async def tts_bytes(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        refused = await self._refuse_or_hang()
        if refused is not None:
            return refused
        body = await request.json()
        self.requests.append(body)
        self.transcripts.append(body["transcript"])
        audio = self._tone(body["transcript"], body["output_format"]["sample_rate"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        if self.failure == "close":
            return response  # headers only: the connection ends with no audio
        for offset in range(0, len(audio), 4800):
            await response.write(audio[offset : offset + 4800])
        self.audio_bytes_sent += len(audio)
        await response.write_eof()
        return response

    def _tone(self, text: str, sample_rate: int) -> bytes:
        count = int(len(text.strip()) * self.seconds_per_char * sample_rate)
        times = np.arange(count) / sample_rate
        return (np.sin(2 * np.pi * 220 * times) * 8000).astype(np.int16).tobytes()

    def _timestamps(self, text: str, context_id: str) -> dict[str, Any]:
        words = text.split()
        step = len(text.strip()) * self.seconds_per_char / max(len(words), 1)
        return {
            "type": "timestamps",
            "done": False,
            "status_code": 206,
            "context_id": context_id,
            "word_timestamps": {
                "words": words,
                "start": [index * step for index in range(len(words))],
                "end": [(index + 1) * step for index in range(len(words))],
            },
        }


@contextlib.asynccontextmanager
async def serving(fake: _Server, routes: list[web.RouteDef]) -> AsyncIterator[str]:
    """Serve `routes` on a free port of 127.0.0.1; yields the base URL (http://…)."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake.base_url
    finally:
        fake._release.set()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def fake_deepgram(**options: Any) -> AsyncIterator[FakeDeepgram]:
    fake = FakeDeepgram(**options)
    async with serving(fake, [web.get("/v1/listen", fake.listen)]):
        yield fake


@contextlib.asynccontextmanager
async def fake_cartesia(**options: Any) -> AsyncIterator[FakeCartesia]:
    fake = FakeCartesia(**options)
    routes = [web.get("/tts/websocket", fake.websocket), web.post("/tts/bytes", fake.tts_bytes)]
    async with serving(fake, routes):
        yield fake
