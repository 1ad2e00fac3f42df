"""The body of `voxflow test`: run scenario files, print pytest-like lines, write JUnit XML.

`voxflow.cli` owns the command's options and error style; this module never exits the process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from voxflow.core.settings import Settings
from voxflow.scenarios.report import failure_lines, junit_xml, result_line, summary_line
from voxflow.scenarios.results import ScenarioResult
from voxflow.scenarios.runner import RunOptions, ScenarioRunner, collect_files
from voxflow.tools import default_registry

if TYPE_CHECKING:
    from voxflow.providers.llm import OpenAICompatibleLLM


class UsageProblem(Exception):
    """The command was called wrongly (exit code 2), e.g. no scenario files to run."""


def configured_llm(settings: Settings) -> OpenAICompatibleLLM | None:
    """The settings' model (any OpenAI-compatible endpoint), or None when none is set."""
    if settings.llm_model is None:
        return None
    from voxflow.providers.llm import OpenAICompatibleLLM

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAICompatibleLLM(
        settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
    )


def run_tests(
    paths: list[Path], *, junit: Path | None, use_llm: bool, settings: Settings, out: Console
) -> int:
    """Run every scenario under `paths`; the exit code: 1 if any failed, else 0.

    Conversations run offline unless `use_llm`; `judge:` claims use the configured model
    whenever there is one. Tools are always stubbed.
    """
    files = collect_files(paths)
    if not files:
        shown = ", ".join(str(path) for path in paths)
        raise UsageProblem(f"no *.scenario.yaml files in {shown}")
    if use_llm and settings.llm_model is None:
        raise UsageProblem("--llm needs a model: set VOXFLOW_LLM_MODEL (and VOXFLOW_LLM_BASE_URL)")
    results = asyncio.run(_run(files, use_llm=use_llm, settings=settings, out=out))
    if junit is not None:
        try:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(junit_xml(results), encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"cannot write {junit}: {exc.strerror}") from None
    failed = any(result.status == "failed" for result in results)
    style = "red" if failed else "green"
    out.print(f"[{style}]{summary_line(results)}[/]", highlight=False)
    return 1 if failed else 0


async def _run(
    files: list[Path], *, use_llm: bool, settings: Settings, out: Console
) -> list[ScenarioResult]:
    model = configured_llm(settings)
    # The real registry, for its argument schemas only: stubs answer every call.
    registry = default_registry(allow_private_networks=settings.tools_allow_private_networks)
    options = RunOptions(llm=model if use_llm else None, judge=model, catalog=registry)
    results: list[ScenarioResult] = []
    try:
        async for result in ScenarioRunner(options).run_files(files):
            results.append(result)
            out.print(result_line(result), soft_wrap=True, highlight=False)
            for line in failure_lines(result):
                out.print(f"    {escape(line)}", soft_wrap=True, highlight=False)
    finally:
        await registry.aclose()
        if model is not None:
            await model.aclose()
    return results
