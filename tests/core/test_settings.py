"""A wrong setting fails at start with one clear line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voxflow.core.settings import Settings, SettingsError, load_settings

VOXFLOW = Path(sys.executable).parent / "voxflow"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VOXFLOW_* variables and no .env but the test's own."""
    for name in list(os.environ):
        if name.startswith("VOXFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _load_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


class TestLoadSettings:
    def test_an_unsupported_database_url_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        message = _load_error(monkeypatch, "VOXFLOW_DATABASE_URL", "mysql://x")

        assert message.startswith("VOXFLOW_DATABASE_URL")
        assert "\n" not in message
        assert "postgresql+asyncpg://" in message

    def test_a_malformed_rate_limit_is_named_with_its_value(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        message = _load_error(monkeypatch, "VOXFLOW_API_RATE_LIMIT", "lots")

        assert message == "VOXFLOW_API_RATE_LIMIT: not a rate limit like '600/minute': 'lots'"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("VOXFLOW_DATABASE_POOL_SIZE", "0"),
            ("VOXFLOW_LOG_LEVEL", "loud"),
            ("VOXFLOW_MAX_BODY_BYTES", "ten"),
            ("VOXFLOW_LOGIN_RATE_LIMIT", "10 per minute please"),
        ],
    )
    def test_every_setting_is_named_the_same_way(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        message = _load_error(monkeypatch, name, value)

        assert message.startswith(f"{name}: ")
        assert "\n" not in message

    def test_a_wrong_value_in_dot_env_is_named_too(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("VOXFLOW_DATABASE_URL=mysql://from-dotenv\n")

        with pytest.raises(SettingsError, match=r"^VOXFLOW_DATABASE_URL"):
            load_settings()

    def test_the_password_in_a_database_url_is_not_repeated(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        message = _load_error(monkeypatch, "VOXFLOW_DATABASE_URL", "mysql://u:hunter2@db/x")

        assert "hunter2" not in message

    def test_good_values_load(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VOXFLOW_DATABASE_URL", "postgresql+asyncpg://u@db/voxflow")
        monkeypatch.setenv("VOXFLOW_API_RATE_LIMIT", "100/second")

        settings = load_settings()

        assert settings.database_url == "postgresql+asyncpg://u@db/voxflow"
        assert settings.api_rate_limit == "100/second"
        assert settings == Settings(
            database_url="postgresql+asyncpg://u@db/voxflow", api_rate_limit="100/second"
        )


def _voxflow(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXFLOW_")}
    return subprocess.run(
        [str(VOXFLOW), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestServe:
    @pytest.mark.parametrize(
        "value",
        # Long values must not wrap; "[/]" must not be read as rich markup.
        ["x", "as many as you like, " * 5, "[/]"],
    )
    def test_a_bad_setting_exits_2_with_one_line_naming_it(
        self, tmp_path: Path, value: str
    ) -> None:
        result = _voxflow(
            tmp_path,
            "serve",
            VOXFLOW_API_RATE_LIMIT=value,
            VOXFLOW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'voxflow.db'}",
        )

        lines = (result.stdout + result.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert "VOXFLOW_API_RATE_LIMIT" in lines[0]
        assert f"'{value}'" in lines[0]
        assert result.returncode == 2

    def test_an_unreachable_database_is_one_line_without_the_password(self, tmp_path: Path) -> None:
        result = _voxflow(
            tmp_path,
            "serve",
            VOXFLOW_DATABASE_URL="postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nowhere",
        )

        lines = (result.stdout + result.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert "cannot use the database" in lines[0]
        assert "hunter2" not in lines[0]
        assert result.returncode == 1

    def test_an_unmigrated_database_exits_1_and_says_how_to_migrate(self, tmp_path: Path) -> None:
        database = tmp_path / "empty.db"
        database.touch()

        result = _voxflow(tmp_path, "serve", VOXFLOW_DATABASE_URL=f"sqlite+aiosqlite:///{database}")

        assert result.returncode == 1
        output = " ".join((result.stdout + result.stderr).split())
        assert "run: voxflow db upgrade" in output
