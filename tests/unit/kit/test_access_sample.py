"""The access log's sample: every error, a share of the rest; production keeps 1 in 100."""

from __future__ import annotations

import random

import pytest

from fulcrum.kit.config import Settings
from fulcrum.kit.logging import AccessSample


def test_every_error_is_kept_whatever_the_share() -> None:
    sample = AccessSample(0.0)
    assert all(sample.keeps(failed=True) for _ in range(1000))
    assert not any(sample.keeps(failed=False) for _ in range(1000))


def test_a_share_of_successes_is_kept() -> None:
    random.seed(7)
    kept = sum(AccessSample(0.1).keeps(failed=False) for _ in range(20_000))
    assert 1_700 < kept < 2_300
    assert all(AccessSample(1.0).keeps(failed=False) for _ in range(1000))


@pytest.mark.parametrize(
    ("env", "share"), [("development", 1.0), ("test", 1.0), ("production", 0.01)]
)
def test_the_default_share_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, share: float
) -> None:
    monkeypatch.setenv("FULCRUM_ENV", env)
    monkeypatch.delenv("FULCRUM_ACCESS_LOG_SAMPLE", raising=False)
    assert Settings().access_log_share == share


def test_a_configured_share_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_ENV", "production")
    monkeypatch.setenv("FULCRUM_ACCESS_LOG_SAMPLE", "0.5")
    assert Settings().access_log_share == 0.5
    monkeypatch.setenv("FULCRUM_ACCESS_LOG_SAMPLE", "2")
    with pytest.raises(ValueError, match="access_log_sample"):
        Settings()
