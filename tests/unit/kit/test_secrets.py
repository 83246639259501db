"""Secrets come from files; production refuses them as environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.errors import ConfigurationError
from fulcrum.kit.secrets import Secrets, refuse_env_secrets


def settings(tmp_path: Path, env: str = "development") -> Settings:
    return Settings(env=env, home=tmp_path)  # type: ignore[arg-type]


def test_production_refuses_a_secret_in_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        refuse_env_secrets(settings(tmp_path, "production"), {"FULCRUM_KEY_PEPPER": "x"})
    message = err.value.message
    assert "FULCRUM_KEY_PEPPER" in message
    assert "FULCRUM_KEY_PEPPER_FILE=/path/to/file" in message
    assert err.value.field == "FULCRUM_KEY_PEPPER"


@pytest.mark.parametrize(
    "var", ["FULCRUM_DATABASE_PASSWORD", "FULCRUM_AUDIT_SIGNING_KEY", "FULCRUM_CLERK_SECRET"]
)
def test_production_refuses_any_secret_like_variable(tmp_path: Path, var: str) -> None:
    with pytest.raises(ConfigurationError, match=var):
        refuse_env_secrets(settings(tmp_path, "production"), {var: "hunter2"})


def test_production_accepts_file_references(tmp_path: Path) -> None:
    refuse_env_secrets(
        settings(tmp_path, "production"),
        {"FULCRUM_KEY_PEPPER_FILE": "/run/secrets/pepper", "FULCRUM_HTTP_PORT": "8080"},
    )


def test_development_accepts_env_as_last_resort(tmp_path: Path) -> None:
    src = Secrets(settings(tmp_path), Service.API, {"FULCRUM_KEY_PEPPER": "dev"}).require(
        "key_pepper"
    )
    assert src.get() == b"dev"


def test_file_setting_wins_and_is_reread_on_rotation(tmp_path: Path) -> None:
    secret = tmp_path / "pepper"
    secret.write_text("first\n")
    src = Secrets(
        settings(tmp_path), Service.API, {"FULCRUM_KEY_PEPPER_FILE": str(secret)}
    ).require("key_pepper")
    assert src.get() == b"first"
    secret.write_text("second-and-longer\n")
    assert src.get() == b"second-and-longer"


def test_each_service_reads_its_own_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "worker").mkdir(parents=True)
    (tmp_path / "secrets" / "worker" / "audit_signing_key").write_text("from-dir")
    worker = Secrets(settings(tmp_path), Service.WORKER, {})
    assert worker.require("audit_signing_key").get() == b"from-dir"
    assert Secrets(settings(tmp_path), Service.API, {}).source("audit_signing_key") is None


def test_missing_secret_names_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="FULCRUM_KEY_PEPPER_FILE"):
        Secrets(settings(tmp_path), Service.API, {}).require("key_pepper")


def test_dotenv_files_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("FULCRUM_HTTP_PORT=1\nFULCRUM_ENV=production\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FULCRUM_HTTP_PORT", raising=False)
    monkeypatch.delenv("FULCRUM_ENV", raising=False)
    loaded = Settings()
    assert loaded.http_port == 8080
    assert loaded.env == "development"


def test_api_process_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_")}
    env |= {
        "FULCRUM_ENV": "production",
        "FULCRUM_HOME": str(tmp_path),
        "FULCRUM_DATABASE_PASSWORD": "hunter2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "fulcrum.cli", "api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "FULCRUM_DATABASE_PASSWORD is a secret" in result.stderr
    assert "FULCRUM_DATABASE_PASSWORD_FILE" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
