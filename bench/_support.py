"""Helpers of bench/sessions.py: the lag-sampling server, a WebSocket session client, a sampler.

bench/ is not a package; benches put it on sys.path and import this module by name.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
from control_plane import Server, percentile, start_server, tree_cpu_seconds
from rich.table import Table

# The server the bench starts: what `voxflow serve --workers 1` runs (uvicorn.run builds the
# same Config and calls Server.run: uvloop, httptools, no access log, proxy headers), plus one
# task on the server's event loop that sleeps PERIOD and records by how much it overslept. The
# samples go to a file, written every half second, as "monotonic-time lag-ms" lines; the bench
# reads them after each phase and keeps those of the phase's window (CLOCK_MONOTONIC is the
# same clock in every process). Nothing in src/ changes.
LAG_SERVER = """\
import asyncio
import sys
import time

import uvicorn

PERIOD = 0.005  # as shared/baselines/livekit/bench_looplag.py


async def sample_lag(path: str) -> None:
    lines: list[str] = []
    flushed = time.monotonic()
    with open(path, "a") as out:
        while True:
            before = time.monotonic()
            await asyncio.sleep(PERIOD)
            now = time.monotonic()
            lines.append(f"{now:.6f} {(now - before - PERIOD) * 1000:.3f}\\n")
            if now - flushed >= 0.5:
                out.write("".join(lines))
                out.flush()
                lines.clear()
                flushed = now


class LagSampledServer(uvicorn.Server):
    async def serve(self, sockets=None):
        sampler = asyncio.create_task(sample_lag(sys.argv[2]))
        try:
            await super().serve(sockets)
        finally:
            sampler.cancel()


config = uvicorn.Config(
    "voxflow.api.app:create_app",
    factory=True,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_config=None,
    access_log=False,
    proxy_headers=True,
)
LagSampledServer(config).run()
"""


def server_env(database_url: str, port: int, redis_url: str | None) -> dict[str, str]:
    """This environment without VOXFLOW_*, plus the server's settings for the bench."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXFLOW_")}
    env |= {
        "VOXFLOW_DATABASE_URL": database_url,
        "VOXFLOW_LOG_LEVEL": "warning",
        "VOXFLOW_API_RATE_LIMIT": "100000000/minute",
        "VOXFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    if redis_url:
        env["VOXFLOW_REDIS_URL"] = redis_url
    return env


def start_lag_server(env: dict[str, str], port: int, scratch: Path) -> tuple[Server, Path]:
    """LAG_SERVER on `port`, its log and lag samples in `scratch`; (server, lag file)."""
    wrapper, lag_file = scratch / "lag_server.py", scratch / "lag.txt"
    wrapper.write_text(LAG_SERVER)
    command = [sys.executable, str(wrapper), str(port), str(lag_file)]
    return start_server("voxflow", command, env, port, scratch), lag_file


def read_lag(path: Path, start: float, end: float) -> list[float]:
    """The server's lag samples (ms) taken between two `time.monotonic()` readings."""
    samples: list[float] = []
    if not path.exists():
        return samples
    for line in path.read_text().splitlines():
        at, _, lag = line.partition(" ")
        if start <= float(at) <= end:
            samples.append(float(lag))
    return samples


def cpu_jiffies() -> tuple[int, int, int]:
    """(busy, total, stolen) CPU time of the machine so far, from /proc/stat.

    Stolen: time the hypervisor gave this VM's CPUs to someone else."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(n) for n in stat.readline().split()[1:9]
        )  # guest time is already in user
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal, steal


class CpuUsage:
    """CPU used since it was made: by a process tree (the server), this process, the machine."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.at = time.monotonic()
        self.server, self.own, self.machine = tree_cpu_seconds(pid), os.times(), cpu_jiffies()

    def shares(self) -> dict[str, float]:
        """Shares of one core (server, client) and of all cores (machine: 1.0 is all busy)."""
        wall = time.monotonic() - self.at
        own, busy = os.times(), cpu_jiffies()
        own_seconds = (own.user - self.own.user) + (own.system - self.own.system)
        return {
            "server_cpu_share": (tree_cpu_seconds(self.pid) - self.server) / wall,
            "client_cpu_share": own_seconds / wall,
            "machine_busy": (busy[0] - self.machine[0]) / max(busy[1] - self.machine[1], 1),
            "machine_stolen": (busy[2] - self.machine[2]) / max(busy[1] - self.machine[1], 1),
        }


class LoopLag:
    """The same sampler on this process's loop: shows whether the client kept up."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.samples.append((time.monotonic() - before - self.period) * 1000)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        return self.samples


# A reply is over when this returns True for the messages received since the turn was sent.
Done = Callable[[list[dict[str, Any]]], bool]


def waits_at(node_id: str | None, *, speaks: bool = True) -> Done:
    """The reply ends at `node_id` (after its spoken prompt if `speaks`), or the call ended."""

    def done(messages: list[dict[str, Any]]) -> bool:
        last = messages[-1]
        if last["type"] == "end":
            return True
        if node_id is None:
            return False
        if not speaks:
            return last == {"type": "node", "id": node_id}
        entered = any(m == {"type": "node", "id": node_id} for m in messages[:-1])
        return entered and last["type"] == "agent_text"

    return done


class SessionError(RuntimeError):
    pass


class StreamClient:
    """One text session: POST /v1/sessions, then its WebSocket stream."""

    def __init__(self, base_url: str, api_key: str, agent_id: str) -> None:
        self.base_url, self.api_key, self.agent_id = base_url, api_key, agent_id
        self.session_id = ""
        self.ended = False
        self._ws: Any = None

    async def open(self, http: Any, greeting: Done) -> list[dict[str, Any]]:
        from websockets.asyncio.client import connect

        response = await http.post(
            f"{self.base_url}/v1/sessions",
            json={"agent_id": self.agent_id},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if response.status_code != 201:
            raise SessionError(f"POST /v1/sessions: {response.status_code} {response.text}")
        started = response.json()
        self.session_id = started["session_id"]
        self._ws = await connect(started["stream_url"], open_timeout=30)
        return await self._reply(greeting)

    async def turn(self, text: str, done: Done) -> tuple[float, list[dict[str, Any]]]:
        """Send a turn; (ms from the send to the reply's last message, the reply)."""
        started = time.perf_counter()
        await self._ws.send(json.dumps({"type": "user_text", "text": text}))
        reply = await self._reply(done)
        return (time.perf_counter() - started) * 1000, reply

    async def _reply(self, done: Done, limit_s: float = 60.0) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(limit_s):
            while True:
                message: dict[str, Any] = json.loads(await self._ws.recv())
                if message["type"] == "error":
                    raise SessionError(f"{self.session_id}: {message}")
                messages.append(message)
                if message["type"] == "end":
                    self.ended = True
                if done(messages):
                    return messages

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0, "p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "count": len(samples),
        "p50": percentile(samples, 0.50),
        "p95": percentile(samples, 0.95),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
    }


async def deploy(http: httpx.AsyncClient, api_key: str, name: str, source: bytes) -> str:
    """Create a workflow from YAML, publish it, put an agent on it; the agent's id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    created = await http.post(
        "/v1/workflows", content=source, headers={**headers, "Content-Type": "application/yaml"}
    )
    created.raise_for_status()
    workflow_id = created.json()["id"]
    (await http.post(f"/v1/workflows/{workflow_id}/publish", headers=headers)).raise_for_status()
    agent = await http.post(
        "/v1/agents", json={"name": name, "workflow_id": workflow_id}, headers=headers
    )
    agent.raise_for_status()
    agent_id: str = agent.json()["id"]
    return agent_id


async def open_sessions(
    http: httpx.AsyncClient, base_url: str, api_key: str, agent_id: str, count: int, greeting: Done
) -> list[StreamClient]:
    """`count` sessions, each started and its stream open (8 at a time)."""
    gate = asyncio.Semaphore(8)

    async def one() -> StreamClient:
        async with gate:
            client = StreamClient(base_url, api_key, agent_id)
            await client.open(http, greeting)
            return client

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def drive(
    client: StreamClient,
    turns: Sequence[str],
    done: Done,
    first: float,
    interval: float,
    stop: float,
    out: list[float],
) -> None:
    """Turns at `first`, `first + interval` … until `stop`; a late one goes at once (no burst)."""
    at, index = first, 0
    while at < stop:
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        latency, _ = await client.turn(turns[index % len(turns)], done)
        out.append(latency)
        index += 1
        at = max(at + interval, time.monotonic())


async def close_sessions(clients: Sequence[StreamClient]) -> None:
    """Say goodbye (the bench workflow's global route ends the call), then close."""

    async def goodbye(client: StreamClient) -> None:
        with suppress(SessionError, TimeoutError, OSError):
            if not client.ended:
                await client.turn("goodbye", waits_at(None))
        await client.close()

    await asyncio.gather(*(goodbye(client) for client in clients))


async def scripted_call(
    http: httpx.AsyncClient,
    client: StreamClient,
    greeting: Done,
    script: Sequence[tuple[str, Done]],
    last: dict[str, Any],
) -> dict[str, Any]:
    """One call through `script` (text, end of its reply); its final message must be `last`."""
    await client.open(http, greeting)
    latencies: dict[str, float] = {}
    reply: list[dict[str, Any]] = []
    try:
        for text, done in script:
            latencies[text], reply = await client.turn(text, done)
    finally:
        await client.close()
    if not reply or reply[-1] != last:
        raise SessionError(f"the call ended with {reply}, not {last}")
    return {"turn_ms": latencies, "last_reply": reply}


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def phase_table(title: str, runs: Sequence[dict[str, Any]]) -> Table:
    """One row per phase of bench/sessions.py."""
    table = Table(title=title)
    columns = (
        "sessions x turns/s",
        "asked/s",
        "done/s",
        "turn p50/p95/p99",
        "lag p50/p99/max",
        "client lag p99",
        "CPU server/client/all",
        "CPU ms/turn",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for run in runs:
        turn, lag = run["turn_ms"], run["server_lag_ms"]
        shares = ("server_cpu_share", "client_cpu_share", "machine_busy")
        table.add_row(
            run["label"] + (f" [red]({len(run['errors'])} errors)[/]" if run["errors"] else ""),
            f"{run['asked_turns_per_s']:.0f}",
            f"{run['turns_per_s']:.0f}",
            "/".join(ms(turn[key]) for key in ("p50", "p95", "p99")),
            "/".join(ms(lag[key]) for key in ("p50", "p99", "max")),
            ms(run["client_lag_ms"]["p99"]),
            "/".join(f"{run[key]:.0%}" for key in shares),
            ms(run["server_cpu_ms_per_turn"]) if run["turns"] else "-",
        )
    return table
