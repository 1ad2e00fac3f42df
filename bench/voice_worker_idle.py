"""An idle `voxflow worker` job process's memory: what each prepared process costs.

    .venv/bin/python bench/voice_worker_idle.py

livekit's worker keeps job processes prepared before calls come (`num_idle_processes`); each
runs `voice.worker.prewarm`: an `AppContext` and the offline speech models (Whisper, hibari,
silero). This starts a fresh Python, measures its PSS after importing the worker, then after
`prewarm` (the same function livekit calls), against a bare Python with livekit-agents
imported (the floor any livekit worker pays). Informational: the issue asks for the figure,
not a bound. Writes bench/results/voice_worker_idle.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "voice_worker_idle.json"

PROBE = """
import json, sys
def pss():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
figures = {"python": pss()}
import livekit.agents
figures["livekit_agents_imported"] = pss()
if sys.argv[1] == "worker":
    from types import SimpleNamespace
    from voxflow.core.settings import Settings
    from voxflow.voice.worker import prewarm
    figures["voxflow_worker_imported"] = pss()
    proc = SimpleNamespace(userdata={})
    prewarm(Settings(database_url=sys.argv[2], data_dir=sys.argv[3]), proc)
    figures["prewarmed"] = pss()
print(json.dumps(figures))
"""


def measure(kind: str, folder: str) -> dict[str, float]:
    database = f"sqlite+aiosqlite:///{folder}/voxflow.db"
    output = subprocess.run(
        [sys.executable, "-c", PROBE, kind, database, folder],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> int:
    console = Console()
    with tempfile.TemporaryDirectory() as folder, console.status("measuring job processes"):
        bare = measure("bare", folder)
        worker = measure("worker", folder)
    table = Table(title="A prepared voxflow worker job process, PSS (MB)")
    table.add_column("stage")
    table.add_column("voxflow worker", justify="right")
    table.add_column("bare livekit", justify="right")
    table.add_row("python started", f"{worker['python']:.0f}", f"{bare['python']:.0f}")
    table.add_row(
        "livekit-agents imported",
        f"{worker['livekit_agents_imported']:.0f}",
        f"{bare['livekit_agents_imported']:.0f}",
    )
    table.add_row("voxflow.voice.worker imported", f"{worker['voxflow_worker_imported']:.0f}", "")
    table.add_row("prewarmed (context + offline models)", f"{worker['prewarmed']:.0f}", "")
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"worker": worker, "bare": bare}, indent=2))
    console.print(f"results in {RESULTS.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
