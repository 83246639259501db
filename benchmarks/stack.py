"""One checkout's real stack for the benchmarks that drive it from outside, started with that
checkout's own ``fulcrum`` command line as subprocesses, in a temporary home on free ports:
``dev up`` (PostgreSQL, Redis, NATS; mTLS), ``db migrate``, ``events setup``, a tenant whose
rate limits are lifted (``create_tenant``), then ``fulcrum api`` and ``fulcrum worker`` (audit
before answer, the default). Policies are created and activated over REST. ``teardown`` stops
it all and removes the home. Used by decision_path_bench.py and service_bench.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg

# Far above what this machine can ask for, so the rate limiter never refuses.
UNLIMITED_RATE = 1_000_000.0
UNLIMITED_BURST = 10_000_000
REQUEST_TIMEOUT = 10.0


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held at once while choosing)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def describe_checkout(path: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    commit, subject = git("rev-parse", "--short=12", "HEAD"), git("log", "-1", "--format=%s")
    return f"{path} @ {commit} {subject[:60]}{dirty}"


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    one, five, fifteen = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; load average {one:.2f} {five:.2f} {fifteen:.2f}"
    )


def loadavg() -> str:
    return f"{os.getloadavg()[0]:.2f}"


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Teardown runs to the end even when Ctrl-C is pressed again."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True)
class Tenant:
    id: str
    key: str  # the owner's API key


@dataclass
class Stack:
    label: str
    checkout: Path
    api_processes: int | None = None
    """``FULCRUM_API_PROCESSES`` of ``fulcrum api``; None: its default (the usable cores)."""
    home: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    http_port: int = field(init=False)
    grpc_port: int = field(init=False)
    metrics_port: int = field(init=False)
    health_port: int = field(init=False)
    nats_port: int = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    servers_started: bool = False
    tenant_id: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        for tool in ("fulcrum", "python"):
            if not (self.checkout / ".venv" / "bin" / tool).exists():
                raise SystemExit(
                    f"{self.checkout}/.venv/bin/{tool} is missing: run ./scripts/install there"
                )
        # Not a pytest-style 0700 directory: the PostgreSQL system user must traverse it.
        self.home = Path(tempfile.mkdtemp(prefix=f"fulcrum-bench-{self.label}-"))
        self.home.chmod(0o755)
        ports = free_ports(7)
        db, redis, self.nats_port, self.http_port, self.grpc_port = ports[:5]
        self.metrics_port, self.health_port = ports[5:]
        # Nothing of ours leaks in: no FULCRUM_* setting, no PYTHONPATH to another src/.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("FULCRUM_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        self.env.update(
            FULCRUM_ENV="development",
            FULCRUM_HOME=str(self.home),
            FULCRUM_TLS="true",
            FULCRUM_DATABASE_PORT=str(db),
            FULCRUM_REDIS_PORT=str(redis),
            FULCRUM_NATS_PORT=str(self.nats_port),
            FULCRUM_HTTP_PORT=str(self.http_port),
            FULCRUM_GRPC_PORT=str(self.grpc_port),
            FULCRUM_METRICS_PORT=str(self.metrics_port),
            FULCRUM_WORKER_HEALTH_PORT=str(self.health_port),
        )
        if self.api_processes is not None:
            self.env["FULCRUM_API_PROCESSES"] = str(self.api_processes)

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    @property
    def ca_file(self) -> Path:
        return self.certs / "ca.crt"

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"

    def say(self, line: str) -> None:
        say(f"{self.label}: {line}")

    def run(self, *args: str, program: str = "fulcrum", timeout: float = 180) -> str:
        done = subprocess.run(
            [str(self.checkout / ".venv" / "bin" / program), *args],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{self.label}: {program} {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout

    def up(self, tenant_name: str = "bench") -> None:
        """The dev servers, the schema, the streams, one tenant (its owner key in ``key``),
        then ``fulcrum api`` and ``fulcrum worker``, ready. No policies yet."""
        where = self.run("-c", "import fulcrum; print(fulcrum.__file__)", program="python").strip()
        if not Path(where).resolve().is_relative_to((self.checkout / "src").resolve()):
            raise RuntimeError(f"{self.label}: fulcrum imports from {where}, not its own src/")
        self.say(f"code under test: {where}")
        self.say(f"home {self.home}; dev up (PostgreSQL, Redis, NATS) ...")
        self.servers_started = True
        self.run("dev", "up")
        self.say("db migrate ...")
        self.run("db", "migrate")
        self.say("events setup ...")
        self.run("events", "setup")
        tenant = self.create_tenant(tenant_name)
        self.tenant_id, self.key = tenant.id, tenant.key
        self.say(f"tenant {tenant.id} created; enterprise plan, limits lifted")
        processes = self.env.get("FULCRUM_API_PROCESSES", "default: the usable cores")
        self.say(f"starting fulcrum api ({processes} serving processes) and fulcrum worker ...")
        self.start("api")
        self.start("worker")
        self.wait_ready(
            "api", f"{self.base_url}/readyz", ssl.create_default_context(cafile=str(self.ca_file))
        )
        self.wait_ready("worker", f"http://127.0.0.1:{self.health_port}/readyz", True)

    def create_tenant(self, name: str, *, lift_limits: bool = True) -> Tenant:
        """A new tenant and its owner's API key (``fulcrum tenants create``); with
        ``lift_limits``, on the enterprise plan with rate limits no client here can reach."""
        created = self.run("tenants", "create", name, "--owner-user-id", f"user_{name}")
        tenant = re.search(r"tenant ([0-9a-f-]{36})", created)
        key = re.search(r"\b(fk_\S+)", created)
        if tenant is None or key is None:
            raise RuntimeError(f"{self.label}: unexpected output of tenants create:\n{created}")
        if lift_limits:
            self.lift_limits([tenant.group(1)])
        return Tenant(tenant.group(1), key.group(1))

    def superuser_dsn(self) -> str:
        return self.run(
            "-c",
            "from fulcrum.devstack.postgres import Postgres\n"
            "from fulcrum.kit.config import load_settings\n"
            "s = load_settings()\n"
            "print(Postgres(s).superuser_dsn(s.database_name))",
            program="python",
        ).strip()

    def lift_limits(self, tenant_ids: Sequence[str]) -> None:
        """The enterprise plan, with ceilings and overrides far above the plan's; written as
        the platform, as tests/support/identity.py enterprise_plan does. Since migration
        0009 the custom ceilings (``limit_*``) bound the tenant's own overrides
        (``rate_limit_*``): both are set where the schema has them."""
        with psycopg.connect(self.superuser_dsn()) as su:
            su.execute("SELECT fulcrum_operator_begin()")
            columns = ["rate_limit", "key_rate_limit"]
            has_ceilings = su.execute(
                "SELECT 1 FROM information_schema.columns "
                "WHERE table_name = 'tenants' AND column_name = 'limit_per_second'"
            ).fetchone()
            if has_ceilings:
                columns += ["limit", "key_limit"]
            assignments = ", ".join(
                f"{c}_per_second = %(rate)s, {c}_burst = %(burst)s" for c in columns
            )
            su.execute(
                f"UPDATE tenants SET plan = 'enterprise', {assignments} "  # noqa: S608 - fixed names
                "WHERE id = ANY(%(ids)s::uuid[])",
                {"rate": UNLIMITED_RATE, "burst": UNLIMITED_BURST, "ids": list(tenant_ids)},
            )

    def server_pids(self) -> dict[str, int]:
        """The dev servers' main pids (PostgreSQL: the postmaster), by name."""
        raw = self.run(
            "-c",
            "import json\n"
            "from fulcrum.devstack.process import read_pid\n"
            "from fulcrum.devstack.stack import DevStack\n"
            "from fulcrum.kit.config import load_settings\n"
            "servers = DevStack(load_settings()).servers\n"
            "files = {n: getattr(s, 'pidfile', None) for n, s in servers.items()}\n"
            "files['postgresql'] = servers['postgresql'].data / 'postmaster.pid'\n"
            "print(json.dumps({n: read_pid(f) for n, f in files.items()}))",
            program="python",
        ).strip()
        pids: dict[str, int | None] = json.loads(raw)
        missing = [name for name, pid in pids.items() if pid is None]
        if missing:
            raise RuntimeError(f"{self.label}: no running pid for {', '.join(missing)}")
        return {name: pid for name, pid in pids.items() if pid is not None}

    def start(self, command: str) -> None:
        with (self.home / f"{command}.log").open("wb") as log:
            self.processes[command] = subprocess.Popen(
                [str(self.checkout / ".venv" / "bin" / "fulcrum"), command],
                cwd=self.checkout,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            )

    def wait_ready(self, name: str, url: str, verify: ssl.SSLContext | bool) -> None:
        deadline = time.monotonic() + 60
        with httpx.Client(verify=verify, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{self.label}: fulcrum {name} exited:\n{self.log(name)}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{self.label}: {url} not ready in 60 s:\n{self.log(name)}")

    def rest(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            headers={"authorization": f"Bearer {key or self.key}"},
            timeout=REQUEST_TIMEOUT,
        )

    def install_policies(self, policies: Sequence[dict[str, Any]]) -> None:
        """Create and activate each policy over REST, as the tenant's owner."""
        with self.rest() as client:
            for document in policies:
                created = client.post("/v1/policies", json=document)
                if created.status_code != 201:
                    raise RuntimeError(f"{self.label}: create policy: {created.text}")
                policy_id = created.json()["id"]
                activated = client.post(f"/v1/policies/{policy_id}/activate")
                if activated.status_code != 200:
                    raise RuntimeError(f"{self.label}: activate policy: {activated.text}")
            settings = client.get("/v1/settings").json()
        rules = sum(len(document["rules"]) for document in policies)
        self.say(
            f"{len(policies)} policies ({rules} rules) active; plan {settings['plan']}, "
            f"rate limit {settings['rate_limit']}"
        )

    def settle(
        self,
        bodies: Sequence[bytes],
        expected: Sequence[str],
        answered: Callable[[int], None] = lambda count: None,
    ) -> None:
        """Wait until every REST body gets its expected action once: the API learns of new
        policies through NATS (or its poll). ``answered`` hears of each pass's 200s."""
        deadline = time.monotonic() + 20
        with self.rest() as client:
            while True:
                wrong, ok = [], 0
                for index, body in enumerate(bodies):
                    answer = client.post(
                        "/v1/decisions", content=body, headers={"content-type": "application/json"}
                    )
                    ok += answer.status_code == 200
                    action = answer.json().get("action") if answer.status_code == 200 else None
                    if action != expected[index]:
                        wrong.append(f"ask {index}: {answer.status_code} {answer.text[:200]}")
                answered(ok)
                if not wrong:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.label}: {len(wrong)} of {len(bodies)} asks answered "
                        "unexpectedly:\n" + "\n".join(wrong[:10])
                    )
                time.sleep(0.5)

    def log(self, name: str, lines: int = 40) -> str:
        """The last lines of a process's log, without the access log's line per request."""
        path = self.home / f"{name}.log"
        if not path.exists():
            return "(no log)"
        kept = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if '"fulcrum.access"' not in line
        ]
        return "\n".join(kept[-lines:])

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{self.label}: fulcrum {name} exited:\n{self.log(name)}")

    def teardown(self) -> None:
        for name in ("api", "worker"):
            proc = self.processes.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.servers_started:
            try:
                self.run("dev", "down", timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{self.label}: dev down failed: {exc}", file=sys.stderr)
        shutil.rmtree(self.home, ignore_errors=True)
        self.say("torn down")
