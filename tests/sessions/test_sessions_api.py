"""Text sessions over REST, and the call records they leave."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from support import Deployed
from voxflow.cli import app as cli_app


async def start(client: httpx.AsyncClient, deployed: Deployed, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/sessions", json={"agent_id": deployed.agent_id, **body}, headers=deployed.org.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def turn(
    client: httpx.AsyncClient, deployed: Deployed, session_id: str, text: str
) -> httpx.Response:
    return await client.post(
        f"/v1/sessions/{session_id}/turns", json={"text": text}, headers=deployed.org.headers
    )


def texts(messages: list[dict[str, Any]]) -> str:
    return " ".join(m["text"] for m in messages if m["type"] == "agent_text")


class TestStart:
    async def test_a_session_starts_with_the_greeting_and_a_stream_url(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        started = await start(client, luigis_agent)

        assert "book a table" in texts(started["messages"])
        assert {"type": "node", "id": "intent"} in started["messages"]
        assert started["version"] == 1
        assert started["ended"] is False
        assert started["stream_url"].startswith("ws://")
        assert f"/v1/sessions/{started['session_id']}/stream?token=" in started["stream_url"]

    async def test_undeclared_variables_are_refused_with_a_pointer(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        response = await client.post(
            "/v1/sessions",
            json={"agent_id": luigis_agent.agent_id, "variables": {"nope": 1}},
            headers=luigis_agent.org.headers,
        )

        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/variables/nope"

    async def test_an_unknown_agent_is_404(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        response = await client.post(
            "/v1/sessions", json={"agent_id": "agt_nope"}, headers=luigis_agent.org.headers
        )

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


class TestTurns:
    async def test_a_booking_over_rest_ends_completed(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        session_id = (await start(client, luigis_agent))["session_id"]

        replies = [
            (await turn(client, luigis_agent, session_id, line)).json()
            for line in ("yes please", "four", "tomorrow", "Ana")
        ]

        assert "how many" in texts(replies[0]["messages"]).lower()
        assert {"type": "variable", "name": "party_size", "value": 4} in replies[1]["messages"]
        assert replies[3]["ended"] is True
        assert replies[3]["outcome"] == "completed"
        assert "Thanks Ana" in texts(replies[3]["messages"])

    async def test_a_turn_on_an_ended_session_is_409(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        session_id = (await start(client, luigis_agent))["session_id"]
        await turn(client, luigis_agent, session_id, "opening hours")

        response = await turn(client, luigis_agent, session_id, "hello?")

        assert response.status_code == 409

    async def test_an_empty_turn_is_422(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        session_id = (await start(client, luigis_agent))["session_id"]

        response = await turn(client, luigis_agent, session_id, "")

        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/text"


class TestCallRecords:
    async def test_every_turn_is_on_record_while_the_call_runs(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        session_id = (await start(client, luigis_agent))["session_id"]
        await turn(client, luigis_agent, session_id, "yes please")

        call = (
            await client.get(f"/v1/calls/{session_id}", headers=luigis_agent.org.headers)
        ).json()

        assert [(t["role"], t["text"][:14]) for t in call["transcript"]] == [
            ("agent", "Hi, this is Lu"),
            ("user", "yes please"),
            ("agent", "For how many p"),
        ]
        assert call["outcome"] is None
        assert call["node_path"] == ["greet", "intent", "ask_party"]
        assert call["transcript"][2]["latency_ms"] >= 0

    async def test_calls_are_listed_and_filtered(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        done = (await start(client, luigis_agent))["session_id"]
        await turn(client, luigis_agent, done, "opening hours")
        live = (await start(client, luigis_agent))["session_id"]
        headers = luigis_agent.org.headers

        completed = (await client.get("/v1/calls?outcome=completed", headers=headers)).json()
        active = (await client.get("/v1/calls?outcome=active", headers=headers)).json()
        by_agent = (
            await client.get(
                f"/v1/calls?agent_id={luigis_agent.agent_id}&version=1", headers=headers
            )
        ).json()

        assert done in [c["id"] for c in completed["items"]]
        assert live not in [c["id"] for c in completed["items"]]
        assert live in [c["id"] for c in active["items"]]
        assert {done, live} <= {c["id"] for c in by_agent["items"]}

    async def test_a_call_becomes_a_scenario_that_replays_it(
        self,
        client: httpx.AsyncClient,
        luigis_agent: Deployed,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        session_id = (await start(client, luigis_agent))["session_id"]
        for line in ("yes please", "four", "tomorrow", "Ana"):
            await turn(client, luigis_agent, session_id, line)

        response = await client.post(
            f"/v1/calls/{session_id}/scenario", headers=luigis_agent.org.headers
        )

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/yaml")
        scenario = yaml.safe_load(response.text)
        assert scenario["workflow"]["name"] == "Luigi's bookings"
        assert [step.get("user") for step in scenario["steps"]] == [
            None,
            "yes please",
            "four",
            "tomorrow",
            "Ana",
        ]
        assert scenario["steps"][2]["expect"]["vars"] == {"party_size": 4}
        assert scenario["steps"][-1]["expect"]["end"] == "completed"
        replay = tmp_path / "replay.scenario.yaml"
        replay.write_text(response.text)
        monkeypatch.delenv("VOXFLOW_LLM_MODEL", raising=False)
        # The CLI runs its own event loop: give it a thread of its own.
        ran = await asyncio.to_thread(CliRunner().invoke, cli_app, ["test", str(replay)])
        assert ran.exit_code == 0, ran.output
        assert "1 passed, 0 failed" in ran.output
