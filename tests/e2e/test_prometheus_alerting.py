"""A real Prometheus scraping a real API process raises AuthFailureSpike under a spike of
bad credentials.

Prometheus (Debian's /usr/bin/prometheus, installed by scripts/install) runs on a free
127.0.0.1 port with a generated config in a temporary directory: it scrapes the session's
API metrics port every second, evaluates rules every second, and loads a copy of
deploy/prometheus/alerts.yml in which only AuthFailureSpike is made fast:

- `for: 2m` becomes `for: 1s`, and
- the rate window `[5m]` becomes `[15s]`,

so the alert can go pending within seconds instead of minutes. The rest of its expression
(aggregation and the > 1/s threshold) is kept exactly as deployed, and every other rule is
loaded unchanged. The test then sends a few hundred requests with a well-formed but unknown
API key and polls Prometheus's /api/v1/alerts until AuthFailureSpike is pending or firing.
"""

from __future__ import annotations

import copy
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.processes import FulcrumProcess
from tests.support.stack import free_port, new_home

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT = "AuthFailureSpike"
FAST_FOR = "1s"
FAST_WINDOW = "[15s]"
# Well-formed (fk_ + 20 hex key id + 43-character secret) but unknown: reason unknown_key.
BAD_KEY = "fk_" + "0" * 20 + "_" + "A" * 43
BATCHES, BATCH_SIZE, BATCH_PAUSE = 10, 30, 0.5  # 300 refused requests over ~5 s
ALERT_TIMEOUT = 60.0


def prometheus_binary() -> str:
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if path is None:
        pytest.fail(
            "prometheus is not installed: it comes with Debian's `prometheus` package, which "
            "./scripts/install installs (apt-get install -y prometheus)"
        )
    return path


def fast_rules() -> dict[str, Any]:
    """alerts.yml with AuthFailureSpike's `for:` and rate window shortened, nothing else."""
    rules = copy.deepcopy(yaml.safe_load(ALERTS.read_text()))
    matched = [
        rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == ALERT
    ]
    assert len(matched) == 1, f"expected one {ALERT} rule in {ALERTS}"
    rule = matched[0]
    assert rule["expr"].count("[5m]") == 1, f"{ALERT} no longer has one [5m] window: {rule}"
    rule["expr"] = rule["expr"].replace("[5m]", FAST_WINDOW)
    rule["for"] = FAST_FOR
    return rules


def prometheus_config(metrics_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {
                "job_name": "fulcrum-api",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            }
        ],
    }


class Prometheus:
    def __init__(self, home: Path, metrics_port: int) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "prometheus.log"
        (home / "alerts.yml").write_text(yaml.safe_dump(fast_rules(), sort_keys=False))
        (home / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(metrics_port)))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={self.home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def diagnostics(self) -> str:
        lines = []
        for what, path, params in (
            ("auth failures", "/api/v1/query", {"query": "fulcrum_auth_failures_total"}),
            ("alerts", "/api/v1/alerts", {}),
        ):
            try:
                lines.append(f"{what}: {self.get(path, **params)}")
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                lines.append(f"{what}: unavailable ({exc!r})")
        return "\n".join(lines)

    def fail(self, message: str) -> None:
        pytest.fail(
            f"{message}\n{self.diagnostics()}\n--- prometheus log (tail) ---\n{self.log_tail()}"
        )

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def wait_until(self, what: str, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                self.fail(f"prometheus exited with status {self.proc.returncode}")
            try:
                result = check()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            time.sleep(0.25)
        self.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        return None

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def target_up(self) -> bool:
        targets = self.get("/api/v1/targets")["activeTargets"]
        return any(target["health"] == "up" for target in targets)

    def query(self, expr: str) -> list[Any]:
        result: list[Any] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def alert(self) -> dict[str, Any] | None:
        for alert in self.get("/api/v1/alerts")["alerts"]:
            if alert["labels"].get("alertname") == ALERT and alert["state"] in {
                "pending",
                "firing",
            }:
                found: dict[str, Any] = alert
                return found
        return None


def refuse(client: httpx.Client, count: int) -> None:
    for _ in range(count):
        response = client.get("/v1/api-keys")
        assert response.status_code == 401, response.text


def test_auth_failure_spike_raises_alert_in_real_prometheus(api: FulcrumProcess) -> None:
    home = new_home("fulcrum-prometheus-")
    prometheus = Prometheus(home, api.metrics_port)
    try:
        prometheus.start()
        prometheus.wait_until("Prometheus to be ready", prometheus.ready, 30)
        prometheus.wait_until("the API metrics target to be up", prometheus.target_up, 30)
        rules = prometheus.get("/api/v1/rules")["groups"]
        loaded = {rule["name"]: rule for group in rules for rule in group["rules"]}
        assert FAST_WINDOW in loaded[ALERT]["query"], loaded[ALERT]

        with api.http(BAD_KEY) as client:
            # A few failures first, so the counter series exists in Prometheus before the
            # spike and rate() sees the whole increase.
            refuse(client, 3)
            prometheus.wait_until(
                "the auth-failure counter to be scraped",
                lambda: prometheus.query("fulcrum_auth_failures_total"),
                30,
            )
            alert = None
            for _ in range(BATCHES):
                refuse(client, BATCH_SIZE)
                alert = alert or prometheus.alert()
                time.sleep(BATCH_PAUSE)

        alert = alert or prometheus.wait_until(
            f"{ALERT} to be pending or firing", prometheus.alert, ALERT_TIMEOUT
        )
        assert alert["labels"]["severity"] == "warning", alert
        assert float(alert["value"]) > 1, alert
        print(f"{ALERT} is {alert['state']}: {alert}")
    finally:
        prometheus.stop()
        shutil.rmtree(home, ignore_errors=True)
