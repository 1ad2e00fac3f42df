"""Call recordings kept for `recording_retention_days`: where they go, the lookup the API
serves, and the sweep.

    path = await recording_of(context, org_id, call_id)      # NotFound when none or expired
    deleted = await sweep_expired_recordings(context)        # what the loop runs every hour
    loop = RetentionLoop(context); loop.start(); …; await loop.stop()

A recording is expired once the retention has passed since its call started; the API refuses it
from that moment, and the next sweep deletes its file and clears `calls.recording_path`. Several
processes may sweep at once: deleting a file twice or clearing a column twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import select, update

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.errors import NotFound
from voxflow.core.settings import Settings
from voxflow.sessions.models import Call
from voxflow.sessions.repository import CallRepository

log = structlog.get_logger("voxflow.voice")

SWEEP_INTERVAL_S = 3600.0
SWEEP_BATCH = 500
RECORDINGS_DIR = "recordings"


def recording_relpath(org_id: str, call_id: str) -> str:
    """Where a call's recording goes, relative to the data dir (stored on the call)."""
    return f"{RECORDINGS_DIR}/{org_id}/{call_id}.wav"


def recording_file(settings: Settings, recording_path: str) -> Path:
    """The file of a stored `recording_path` (a relative one is under the data dir)."""
    return settings.data_dir / recording_path


def retention_cutoff(context: AppContext, now: datetime | None = None) -> datetime | None:
    """Calls started before this have expired recordings; None: recordings are kept forever."""
    days = context.settings.recording_retention_days
    return None if days == 0 else (now or utcnow()) - timedelta(days=days)


async def recording_of(context: AppContext, org_id: str, call_id: str) -> Path:
    """The WAV file of a call of this org; NotFound when it has none or it expired."""
    async with context.sessionmaker() as session:
        call = await CallRepository(session).get(org_id, call_id)
    if call is None:
        raise NotFound(f"No call {call_id}.")
    cutoff = retention_cutoff(context)
    expired = cutoff is not None and call.started_at < cutoff
    path = recording_file(context.settings, call.recording_path) if call.recording_path else None
    if path is None or expired or not await asyncio.to_thread(path.is_file):
        raise NotFound(f"Call {call_id} has no recording.")
    return path


async def sweep_expired_recordings(context: AppContext, now: datetime | None = None) -> int:
    """Delete expired recordings' files and clear their `recording_path`; how many."""
    cutoff = retention_cutoff(context, now)
    if cutoff is None:
        return 0
    swept = 0
    while True:
        async with context.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Call.id, Call.recording_path)
                    .where(Call.recording_path.is_not(None), Call.started_at < cutoff)
                    .limit(SWEEP_BATCH)
                )
            ).all()
        if not rows:
            return swept
        files = [recording_file(context.settings, path) for _, path in rows if path]
        await asyncio.to_thread(_delete_files, files)
        # The file goes first: a crash in between leaves a path whose file is gone (the API
        # answers 404 for it), never a file nobody would delete.
        async with context.sessionmaker() as session, session.begin():
            ids = [call_id for call_id, _ in rows]
            await session.execute(update(Call).where(Call.id.in_(ids)).values(recording_path=None))
        swept += len(rows)
        if len(rows) < SWEEP_BATCH:
            return swept


def _delete_files(files: list[Path]) -> None:
    for path in files:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("voice_recording_delete_failed", path=str(path), error=str(exc))


class RetentionLoop:
    """The process's sweeper: a sweep at start, then every `interval_s`, until `stop`."""

    def __init__(self, context: AppContext, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._context = context
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="recording-retention")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # wait_for cancelled it
                await asyncio.wait_for(self._task, 10.0)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                swept = await sweep_expired_recordings(self._context)
                if swept:
                    log.info("voice_recordings_expired", count=swept)
            except Exception:
                log.exception("voice_recording_sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
