"""The tools a scenario's engine gets: answers come from the step's `tools:` stubs, so a
scenario never reaches the network, and a call nobody stubbed fails the scenario by name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import JsonValue

from voxflow.dsl.lint import ToolCatalog
from voxflow.engine.secrets import masked
from voxflow.scenarios.model import ToolStub
from voxflow.scenarios.results import Mismatch
from voxflow.tools.registry import ToolError


class StubSecrets:
    """Scenarios never read the vault: `{{ secrets.NAME }}` renders as `[secret NAME]`, as in
    call records, so a step's tool stub can expect exactly that in the arguments."""

    async def resolve(self, names: Collection[str]) -> Mapping[str, str]:
        return masked(names)


class StubTools:
    def __init__(self, catalog: ToolCatalog | None = None) -> None:
        """With a `catalog`, arguments are checked against the real tool's schema, and an
        invalid call fails as the real registry would (the workflow's `on_error`)."""
        self._catalog = catalog
        self.arm({})

    def arm(self, stubs: Mapping[str, ToolStub]) -> None:
        """Answer with `stubs` from now on (one step's), forgetting the previous step's calls."""
        self._stubs = dict(stubs)
        self.used: set[str] = set()
        self.unstubbed: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, args: Mapping[str, Any]) -> JsonValue:
        stub = self._stubs.get(name)
        if stub is None:
            self.unstubbed.append((name, dict(args)))
            # The engine treats this like any tool failure; `mismatches` makes it fail the step.
            raise ToolError(f"unstubbed tool call {name}")
        self.used.add(name)
        self._check_args(name, args)
        if stub.delay_ms:
            await asyncio.sleep(stub.delay_ms / 1000)
        if stub.error is not None:
            raise ToolError(stub.error)
        return stub.result

    def _check_args(self, name: str, args: Mapping[str, Any]) -> None:
        if self._catalog is None:
            return
        try:
            problems = self._catalog.check_args(name, args)
        except KeyError:
            raise ToolError(f"unknown tool {name!r}") from None
        if problems:
            listed = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems)
            raise ToolError(f"invalid arguments for {name}: {listed}")

    def mismatches(self) -> list[Mismatch]:
        """Calls without a stub, and stubs no call used, in the step just played."""
        found = [
            Mismatch(
                "tools",
                f"a stub for {name} in the step's `tools:`",
                f"unstubbed tool call {name} with {json.dumps(args, ensure_ascii=False)}",
            )
            for name, args in self.unstubbed
        ]
        found += [
            Mismatch("tools", f"a call to {name} (it is stubbed)", "no call in this step")
            for name in self._stubs
            if name not in self.used
        ]
        return found
