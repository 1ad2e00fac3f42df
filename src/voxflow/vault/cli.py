"""`voxflow secrets …`: the vault's master keys (rotation, removal of old versions)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.vault.crypto import VaultError
from voxflow.vault.rotation import plan_rotation, remove_old_key, rewrap_all, rows_by_version

secrets_app = typer.Typer(help="The vault's master keys.", no_args_is_help=True)
console = Console(stderr=True)


def _settings() -> Settings:
    from voxflow.cli import _settings as configured

    return configured()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@secrets_app.command("rotate-key")
def rotate_key() -> None:
    """Add a master key version and re-wrap every secret's data key with it.

    Safe while servers run, and safe to interrupt: run it again to finish. Afterwards the old
    version can be removed with `voxflow secrets remove-key VERSION`.
    """

    async def main() -> None:
        context = AppContext.create(_settings())
        try:
            plan = await plan_rotation(context)
            if plan.added_version is not None:
                console.print(f"added master key version {plan.added_version}")
            else:
                console.print(f"re-wrapping with master key version {plan.ring.current}")
            with Progress(
                TextColumn("re-wrapping data keys"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("rewrap", total=plan.pending)
                result = await rewrap_all(context, plan.ring, lambda n: progress.advance(task, n))
            old = [version for version in plan.ring.versions if version < result.key_version]
            console.print(
                f"{result.rewrapped} secrets now use key version {result.key_version}"
                + (
                    f"; remove an old version with: voxflow secrets remove-key {old[0]}"
                    if old
                    else ""
                )
            )
        finally:
            await context.close()

    try:
        asyncio.run(main())
    except VaultError as exc:
        raise _fail(str(exc)) from None


@secrets_app.command("remove-key")
def remove_key(version: int) -> None:
    """Remove an old master key version from the key file (refused while a secret uses it)."""

    async def main() -> None:
        context = AppContext.create(_settings())
        try:
            await remove_old_key(context, version)
        finally:
            await context.close()

    try:
        asyncio.run(main())
    except VaultError as exc:
        raise _fail(str(exc)) from None
    console.print(f"removed master key version {version}")


@secrets_app.command("key-status")
def key_status() -> None:
    """How many stored secrets each master key version wraps."""

    async def main() -> dict[int, int]:
        context = AppContext.create(_settings())
        try:
            return await rows_by_version(context)
        finally:
            await context.close()

    counts = asyncio.run(main())
    if not counts:
        console.print("no secrets stored")
    for version, count in sorted(counts.items()):
        console.print(f"key version {version}: {count} secrets")
