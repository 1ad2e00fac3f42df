"""Voice fixtures: espeak-ng speech, and a client of the audio WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support import Deployed

FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    """PCM16LE mono 16 kHz of a sentence spoken by espeak-ng (CI installs espeak-ng and sox)."""
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[str, bytes] = {}

    def make(text: str) -> bytes:
        if text not in cache:
            raw, converted = folder / f"{len(cache)}.wav", folder / f"{len(cache)}-16k.wav"
            subprocess.run(
                ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True
            )
            subprocess.run(
                ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(converted)],
                check=True,
            )
            cache[text] = read_wav(converted)
        return cache[text]

    return make


def read_wav(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        return wav.readframes(wav.getnframes())


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


async def start_voice_session(client: httpx.AsyncClient, deployed: Deployed) -> dict[str, Any]:
    response = await client.post(
        "/v1/sessions",
        json={"agent_id": deployed.agent_id, "mode": "voice"},
        headers=deployed.org.headers,
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    assert started["audio_url"]
    return started


def audio_url(started: dict[str, Any], live_url: str) -> str:
    path = started["audio_url"].split("/v1/", 1)[1]
    return f"ws://{live_url}/v1/{path}"


async def call_record(
    client: httpx.AsyncClient, deployed: Deployed, call_id: str, *, ended: bool = True
) -> dict[str, Any]:
    """GET /v1/calls/{id}, waiting (up to 10 s) for it to end when `ended`."""
    record: dict[str, Any] = {}
    for _ in range(200):
        response = await client.get(f"/v1/calls/{call_id}", headers=deployed.org.headers)
        record = response.json()
        if not ended or record["outcome"] is not None:
            break
        await asyncio.sleep(0.05)
    return record


class VoiceClient:
    """The client side of the audio WebSocket: every message kept, audio with arrival times."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.audio_chunks: list[tuple[float, int]] = []  # (arrival, offset in self.audio)
        self.close_code: int | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.audio_chunks.append((time.monotonic(), len(self.audio)))
                    self.audio += frame
                else:
                    self.messages.append(json.loads(frame))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else None
            self._changed.set()

    @property
    def closed(self) -> bool:
        return self._task.done()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def wait_for(self, check: Callable[[], Any], within: float = 20.0, what: str = "") -> Any:
        deadline = time.monotonic() + within
        while not (result := check()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed and not check()):
                raise AssertionError(f"timed out waiting for {what}: {self.messages}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.1))
        return result

    async def wait_message(self, kind: str, within: float = 20.0, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for message in self.messages:
                if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                    return message
            return None

        result: dict[str, Any] = await self.wait_for(found, within, f"{kind} {fields}")
        return result

    async def wait_audio_quiet(self, quiet_s: float = 0.7, within: float = 20.0) -> None:
        """Wait until agent audio arrived and then none came for `quiet_s`."""

        def quiet() -> bool:
            return bool(self.audio_chunks) and (
                time.monotonic() - self.audio_chunks[-1][0] > quiet_s
            )

        await self.wait_for(quiet, within, "the agent to stop speaking")

    async def speak(self, pcm: bytes, *, silence_after_s: float = 1.2) -> None:
        """Stream audio in real time, 20 ms frames, then silence."""
        pcm = pcm + b"\x00\x00" * int(16000 * silence_after_s)
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
            frame = pcm[offset : offset + FRAME_BYTES]
            if len(frame) < FRAME_BYTES:
                frame += b"\x00" * (FRAME_BYTES - len(frame))
            await self.ws.send(frame)
            await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - time.monotonic()))

    async def wait_closed(self, within: float = 15.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout=within)
        return self.close_code


@contextlib.asynccontextmanager
async def voice_client(url: str) -> AsyncIterator[VoiceClient]:
    async with connect(url, max_size=2**22) as ws:
        client = VoiceClient(ws)
        try:
            yield client
        finally:
            client._task.cancel()
