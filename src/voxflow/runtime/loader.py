"""Agent → version → compiled version, kept in memory for the sessions a process starts.

Two caches, because what they hold changes differently:

- **Compiled versions**, by version id. A published version never changes, so an entry is only
  ever evicted (LRU of `runtime_cache_versions`).
- **Resolutions**: an agent's row (workflow, pin, canary, overrides) and each workflow's latest
  version number. These change. A committed change of an agent or a workflow (a publish moves
  "latest") drops its entry in this process at once (`AppContext.change_listeners`) and in
  every other process through Redis pub/sub (`ChangeSubscriber`). While no subscription is
  live (no Redis, or Redis away), an entry older than `runtime_resolution_ttl_s` is read again.

The canary is chosen per session key on every load (a hash), never cached per agent.

Agent overrides: override *variables* are handed out with the loaded agent (initial values of a
session). Override *settings* change the document (language, voices, global routes, whose CEL
guards are compiled), so an agent with settings overrides runs its own compiled version: the
document with the settings merged, compiled once and cached under (version id, digest of the
override settings). Agents with the same overrides share it; agents without any share the
plain version's entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from pydantic import JsonValue, ValidationError
from sqlalchemy import select

from voxflow.agents.repository import AgentRepository
from voxflow.agents.schemas import AgentOverrides
from voxflow.agents.service import AGENT_TOPIC, canary_bucket
from voxflow.core.context import AppContext
from voxflow.core.db import Change
from voxflow.core.errors import Conflict, NotFound
from voxflow.dsl.compile import CompiledVersion, CompileError, compile_version
from voxflow.dsl.schema import WorkflowDocument, WorkflowSettings
from voxflow.runtime.listener import ChangeSubscriber
from voxflow.workflows.models import Workflow
from voxflow.workflows.repository import WorkflowRepository
from voxflow.workflows.service import WORKFLOW_TOPIC

_EXTRAS_KEY = "runtime_loader"
# What a load in progress is known by: ("version", org, workflow, number) or
# ("settings", version id, digest).
_LoadKey = tuple[str | int, ...]
# Agent rows and latest numbers are a few hundred bytes each; bounded only so that a process
# serving very many agents does not grow without end.
_MAX_RESOLUTIONS = 10_000
# (org, workflow, number) → version id: strings, so many more than compiled versions.
_MAX_VERSION_IDS = 100_000


@dataclass(frozen=True, slots=True)
class LoadedAgent:
    """What a new session of an agent runs."""

    agent_id: str
    org_id: str
    name: str
    workflow_id: str
    version_number: int
    version_id: str
    # With the agent's settings overrides merged in (`compiled.id` is still the version's id).
    compiled: CompiledVersion
    # The agent's override variables: initial values for the session (a copy per load).
    variables: dict[str, JsonValue]
    # Whether its voice calls are recorded (`agents.record`).
    record: bool


@dataclass(frozen=True, slots=True)
class _AgentRow:
    org_id: str
    name: str
    workflow_id: str
    pinned_version: int | None
    canary_version: int | None
    canary_percent: float | None
    settings: dict[str, Any]
    settings_digest: str | None  # None: no settings overrides
    variables: dict[str, JsonValue]
    record: bool
    read_at: float


@dataclass(frozen=True, slots=True)
class _Latest:
    number: int
    read_at: float


class RuntimeLoader:
    """Loads agents and versions for sessions; one per process (`runtime_loader`)."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._ttl_s = context.settings.runtime_resolution_ttl_s
        self._compiled: LRUCache[str, CompiledVersion] = LRUCache(
            maxsize=context.settings.runtime_cache_versions
        )
        self._version_ids: LRUCache[tuple[str, str, int], str] = LRUCache(_MAX_VERSION_IDS)
        self._agents: LRUCache[str, _AgentRow] = LRUCache(_MAX_RESOLUTIONS)
        self._latest: LRUCache[str, _Latest] = LRUCache(_MAX_RESOLUTIONS)
        # Moves on every drop: a read that started before a drop is returned but not stored,
        # as it may predate the change that caused the drop.
        self._generation = 0
        self._loading: dict[_LoadKey, asyncio.Future[CompiledVersion]] = {}
        self._subscriber: ChangeSubscriber | None = None
        # Listening from the start (not only after `start()`): a change committed by this
        # process is then never served old by it, whether or not Redis is there.
        context.change_listeners.append(self._drop)

    @property
    def listening(self) -> bool:
        """Whether changes from other processes reach this one now (else the TTL applies)."""
        return self._subscriber is not None and self._subscriber.listening

    @property
    def subscriber_name(self) -> str | None:
        """The Redis client name of the subscription (`CLIENT LIST`), if there is one."""
        return self._subscriber.name if self._subscriber is not None else None

    async def start(self) -> None:
        """Subscribe to other processes' changes (with Redis; returns once subscribed or after
        the first attempt failed, then keeps retrying in the background)."""
        redis_url = self._context.settings.redis_url
        if self._subscriber is None and self._context.redis is not None and redis_url:
            self._subscriber = ChangeSubscriber(
                redis_url, on_changes=self._drop, on_subscribed=self._drop_all
            )
            await self._subscriber.start()

    async def close(self) -> None:
        if self._drop in self._context.change_listeners:
            self._context.change_listeners.remove(self._drop)
        if self._subscriber is not None:
            await self._subscriber.close()
            self._subscriber = None
        for task in self._loading.values():
            task.cancel()
        if self._context.extras.get(_EXTRAS_KEY) is self:
            del self._context.extras[_EXTRAS_KEY]

    # --- loading ----------------------------------------------------------------------------

    async def load_agent(self, org_id: str, agent_id: str, session_key: str) -> LoadedAgent:
        """The version a new session of the agent runs, compiled, with the agent's overrides.

        NotFound for an agent that is missing, deleted or another org's; Conflict when it
        would run "latest" and nothing is published. Served from memory when cached.
        """
        agent = self._agents.get(agent_id)
        if agent is None or self._expired(agent.read_at):
            agent = await self._read_agent(org_id, agent_id)
        if agent.org_id != org_id:
            raise _no_agent(agent_id)
        number = await self._choose_version(agent_id, agent, session_key)
        version = await self.load_version(org_id, agent.workflow_id, number)
        compiled = version
        if agent.settings_digest is not None:
            compiled = await self._with_settings(version, agent.settings, agent.settings_digest)
        return LoadedAgent(
            agent_id=agent_id,
            org_id=org_id,
            name=agent.name,
            workflow_id=agent.workflow_id,
            version_number=number,
            version_id=version.id,
            compiled=compiled,
            variables=dict(agent.variables),
            record=agent.record,
        )

    async def load_version(self, org_id: str, workflow_id: str, number: int) -> CompiledVersion:
        """One published version, compiled (NotFound if the org has no such version)."""
        version_id = self._version_ids.get((org_id, workflow_id, number))
        if version_id is not None:
            compiled = self._compiled.get(version_id)
            if compiled is not None:
                return compiled
        return await self._once(
            ("version", org_id, workflow_id, number),
            lambda: self._read_version(org_id, workflow_id, number),
        )

    async def _once(
        self, key: _LoadKey, load: Callable[[], Awaitable[CompiledVersion]]
    ) -> CompiledVersion:
        """Run `load` once for all who ask for `key` meanwhile: sessions that start together
        after a publish share one read and one compile."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loading[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(task)

    def _loaded(self, key: _LoadKey, task: asyncio.Future[CompiledVersion]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved: an error reaches the callers, not the loop's log

    async def _read_version(self, org_id: str, workflow_id: str, number: int) -> CompiledVersion:
        async with self._context.read_sessionmaker() as session:
            version = await WorkflowRepository(session).get_version(org_id, workflow_id, number)
        if version is None:
            raise NotFound(f"Workflow {workflow_id} has no version {number}.")
        # Compiling takes ~10-20 ms for 50 nodes (Jinja2 turns each template into Python). In a
        # worker thread the event loop keeps serving the calls in progress meanwhile (the GIL
        # changes hands every 5 ms) instead of stalling them all for the whole compile.
        try:
            compiled = await asyncio.to_thread(_parse_and_compile, version.document, version.id)
        except CompileError as exc:
            detail = f"Version {number} of workflow {workflow_id} cannot run: {exc}"
            raise Conflict(detail) from None
        self._compiled[version.id] = compiled
        self._version_ids[(org_id, workflow_id, number)] = version.id
        return compiled

    async def _with_settings(
        self, version: CompiledVersion, settings: dict[str, Any], digest: str
    ) -> CompiledVersion:
        key = f"{version.id}+settings:{digest}"
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled

        async def merge_and_compile() -> CompiledVersion:
            merged = {**version.document.settings.model_dump(), **settings}
            try:
                document = version.document.model_copy(
                    update={"settings": WorkflowSettings.model_validate(merged)}
                )
                compiled = await asyncio.to_thread(compile_version, document, version.id)
            except (ValidationError, CompileError) as exc:
                detail = f"The agent's settings overrides do not fit this version: {exc}"
                raise Conflict(detail) from None
            self._compiled[key] = compiled
            return compiled

        return await self._once(("settings", version.id, digest), merge_and_compile)

    # --- resolution -------------------------------------------------------------------------

    async def _choose_version(self, agent_id: str, agent: _AgentRow, session_key: str) -> int:
        # The rule of `voxflow.agents.service.resolve_version`, on cached data.
        canary, percent = agent.canary_version, agent.canary_percent
        if canary is not None and percent and canary_bucket(agent_id, session_key) < percent:
            return canary
        if agent.pinned_version is not None:
            return agent.pinned_version
        latest = self._latest.get(agent.workflow_id)
        if latest is None or self._expired(latest.read_at):
            latest = await self._read_latest(agent.org_id, agent.workflow_id)
        if latest.number == 0:
            raise Conflict(f"Agent {agent.name} has no published version to run.")
        return latest.number

    async def _read_agent(self, org_id: str, agent_id: str) -> _AgentRow:
        generation, read_at = self._generation, time.monotonic()
        async with self._context.read_sessionmaker() as session:
            agent = await AgentRepository(session).get(org_id, agent_id)
        if agent is None:
            raise _no_agent(agent_id)
        overrides = AgentOverrides.model_validate_json(agent.overrides)
        row = _AgentRow(
            org_id=agent.org_id,
            name=agent.name,
            workflow_id=agent.workflow_id,
            pinned_version=agent.pinned_version,
            canary_version=agent.canary_version,
            canary_percent=agent.canary_percent,
            settings=overrides.settings,
            settings_digest=_digest(overrides.settings) if overrides.settings else None,
            variables=overrides.variables,
            record=agent.record,
            read_at=read_at,
        )
        if generation == self._generation:
            self._agents[agent_id] = row
        return row

    async def _read_latest(self, org_id: str, workflow_id: str) -> _Latest:
        generation, read_at = self._generation, time.monotonic()
        # One column: the workflow row also holds the whole draft, which this does not need.
        query = select(Workflow.latest_version).where(
            Workflow.org_id == org_id, Workflow.id == workflow_id
        )
        async with self._context.read_sessionmaker() as session:
            number = (await session.execute(query)).scalar_one_or_none()
        latest = _Latest(number or 0, read_at)
        if generation == self._generation:
            self._latest[workflow_id] = latest
        return latest

    def _expired(self, read_at: float) -> bool:
        if self.listening:
            return False
        return time.monotonic() - read_at >= self._ttl_s

    # --- invalidation -----------------------------------------------------------------------

    def _drop(self, changes: set[Change]) -> None:
        """Forget what `changes` touch (called in this process after commit, and per message)."""
        dropped = False
        for topic, key in changes:
            if topic == AGENT_TOPIC:
                self._agents.pop(key, None)
                dropped = True
            elif topic == WORKFLOW_TOPIC:
                self._latest.pop(key, None)
                dropped = True
        if dropped:
            self._generation += 1

    def _drop_all(self) -> None:
        """Forget every resolution: changes may have gone unheard while not subscribed."""
        self._agents.clear()
        self._latest.clear()
        self._generation += 1


def _parse_and_compile(document_json: str, version_id: str) -> CompiledVersion:
    # Stored versions passed the linter when published: parsing is all they need, no new lint.
    return compile_version(WorkflowDocument.model_validate_json(document_json), version_id)


def _no_agent(agent_id: str) -> NotFound:
    return NotFound(f"No agent {agent_id}.")


def _digest(settings: dict[str, Any]) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def runtime_loader(context: AppContext) -> RuntimeLoader:
    """This process's loader (made on first use). In the app's lifespan:
    `await runtime_loader(context).start()` at start-up, `.close()` before the context's."""
    loader: RuntimeLoader | None = context.extras.get(_EXTRAS_KEY)
    if loader is None:
        loader = RuntimeLoader(context)
        context.extras[_EXTRAS_KEY] = loader
    return loader
