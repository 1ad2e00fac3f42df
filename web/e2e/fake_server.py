"""A fake Voxflow API for the browser test: serves web/dist, the two HTTP calls the Talk page
makes, and a voice session's audio WebSocket that follows the protocol.

On the socket it sends `ready` (24 kHz out), counts the PCM16 frames it receives, and once it
has 0.5 s of audio sends a partial and a final user transcript, a node, an agent transcript and
3 s of a 440 Hz tone. `POST /test/clear` sends `clear`; a client `hangup` is answered with
`end`. `GET /test/stats` tells the test what it saw. Prints `port N` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import struct
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

API_KEY = "vf_test_key"
TOKEN = "tok_e2e"  # noqa: S105 - a fake server's fixed test token
IN_RATE = 16000
OUT_RATE = 24000
REPLY_AFTER_BYTES = IN_RATE * 2 // 2  # 0.5 s of PCM16
TONE_SECONDS = 3.0
AGENTS = [{"id": "agt_luigi", "name": "Luigi's bookings"}, {"id": "agt_other", "name": "Other"}]


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3) -> bytes:
    n = int(seconds * OUT_RATE)
    samples = (round(amp * 32767 * math.sin(2 * math.pi * freq * i / OUT_RATE)) for i in range(n))
    return struct.pack(f"<{n}h", *samples)


class Fake:
    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self.port = 0
        self.ws: web.WebSocketResponse | None = None
        self.stats: dict[str, Any] = {
            "agents_requests": [],
            "sessions_created": [],
            "ws_token_ok": None,
            "frames": 0,
            "bytes": 0,
            "frame_sizes": [],
            "sum_squares": 0.0,
            "peak": 0,
            "reply_sent_at": None,
            "clear_sent_at": None,
            "client_msgs": [],
            "ws_closed": False,
        }

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {API_KEY}"

    @staticmethod
    def problem(status: int, detail: str) -> web.Response:
        body = {"type": "/problems/x", "title": "Unauthorized", "status": status, "detail": detail}
        return web.json_response(body, status=status, content_type="application/problem+json")

    async def index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.dist / "index.html")

    async def agents(self, request: web.Request) -> web.Response:
        self.stats["agents_requests"].append(request.headers.get("Authorization"))
        if not self.authorized(request):
            return self.problem(401, "Missing or invalid credentials.")
        return web.json_response({"items": AGENTS, "next_cursor": None})

    async def create_session(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.problem(401, "Missing or invalid credentials.")
        body = await request.json()
        self.stats["sessions_created"].append(body)
        url = f"ws://127.0.0.1:{self.port}/v1/sessions/ses_1/audio?token={TOKEN}"
        answer = {"session_id": "ses_1", "audio_url": url, "stream_url": None, "messages": []}
        return web.json_response(answer, status=201)

    async def audio(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.stats["ws_token_ok"] = request.query.get("token") == TOKEN
        self.ws = ws
        ready = {"type": "ready", "input_sample_rate": IN_RATE, "output_sample_rate": OUT_RATE}
        await ws.send_str(json.dumps(ready))
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await self.on_audio(ws, msg.data)
            elif msg.type == WSMsgType.TEXT:
                message = json.loads(msg.data)
                self.stats["client_msgs"].append(message)
                if message.get("type") == "hangup":
                    await ws.send_str(json.dumps({"type": "end", "outcome": "caller_hangup"}))
                    await ws.close()
        self.stats["ws_closed"] = True
        return ws

    async def on_audio(self, ws: web.WebSocketResponse, data: bytes) -> None:
        s = self.stats
        s["frames"] += 1
        s["bytes"] += len(data)
        if len(data) not in s["frame_sizes"]:
            s["frame_sizes"].append(len(data))
        samples = struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])
        s["sum_squares"] += sum(v * v for v in samples)
        s["peak"] = max([s["peak"], *(abs(v) for v in samples)])
        if s["reply_sent_at"] is None and s["bytes"] >= REPLY_AFTER_BYTES:
            s["reply_sent_at"] = time.time()
            for message in (
                {"type": "transcript", "role": "user", "text": "hello", "final": False},
                {"type": "transcript", "role": "user", "text": "hello there", "final": True},
                {"type": "node", "id": "greet"},
                {
                    "type": "transcript",
                    "role": "agent",
                    "text": "Hi! How can I help?",
                    "final": True,
                },
            ):
                await ws.send_str(json.dumps(message))
            pcm = tone(TONE_SECONDS)
            chunk = OUT_RATE // 10 * 2  # 100 ms
            for i in range(0, len(pcm), chunk):
                await ws.send_bytes(pcm[i : i + chunk])

    async def clear(self, _request: web.Request) -> web.Response:
        if self.ws is None or self.ws.closed:
            return web.json_response({"sent": False}, status=409)
        await self.ws.send_str(json.dumps({"type": "clear"}))
        self.stats["clear_sent_at"] = time.time()
        return web.json_response({"sent": True})

    async def get_stats(self, _request: web.Request) -> web.Response:
        s = dict(self.stats)
        count = s["bytes"] // 2
        s["seconds"] = count / IN_RATE
        s["rms"] = math.sqrt(s.pop("sum_squares") / count) / 32768 if count else 0.0
        s["peak"] = s["peak"] / 32768
        return web.json_response(s)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dist", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = Fake(args.dist.resolve())
    app = web.Application()
    app.add_routes(
        [
            web.get("/", fake.index),
            web.get("/v1/agents", fake.agents),
            web.post("/v1/sessions", fake.create_session),
            web.get("/v1/sessions/{session_id}/audio", fake.audio),
            web.post("/test/clear", fake.clear),
            web.get("/test/stats", fake.get_stats),
        ]
    )
    app.router.add_static("/assets", fake.dist / "assets")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    server = site._server
    assert server is not None
    fake.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(f"port {fake.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
