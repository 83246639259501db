"""The ``fulcrum`` command line."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fulcrum.kit import eventloop
from fulcrum.kit.config import Settings, load_settings
from fulcrum.kit.errors import FulcrumError, InvalidArgument

if TYPE_CHECKING:
    from fulcrum.tenants.models import Tenant
from fulcrum.kit.logging import configure_logging, numbered
from fulcrum.kit.secrets import refuse_env_secrets
from fulcrum.tenants.models import Tenant

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help=__doc__
)
certs_app = typer.Typer(no_args_is_help=True, help="Development certificates (mTLS).")
dev_app = typer.Typer(no_args_is_help=True, help="The local stack: PostgreSQL, Redis, NATS.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
tenants_app = typer.Typer(no_args_is_help=True, help="Platform administration of tenants.")
platform_app = typer.Typer(no_args_is_help=True, help="Platform API keys (tenants:admin).")
policy_app = typer.Typer(no_args_is_help=True, help="Policy files: test them locally.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit ledger.")
events_app = typer.Typer(no_args_is_help=True, help="The JetStream event path (operator).")
app.add_typer(certs_app, name="certs")
app.add_typer(dev_app, name="dev")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(platform_app, name="platform-keys")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(events_app, name="events")

Only = Annotated[
    str | None, typer.Option("--service", help="postgresql, redis or nats (default: all)")
]


def _settings() -> Settings:
    settings = load_settings()
    refuse_env_secrets(settings)
    return settings


def _say(line: str) -> None:
    typer.echo(line, err=False)


@certs_app.command("init")
def certs_init(
    force: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Create a development CA and a certificate for every service."""
    from fulcrum.devstack.certs import init_certs

    settings = _settings()
    written = init_certs(settings.resolved_certs_dir, force=force)
    _say(f"{len(written)} files written in {settings.resolved_certs_dir}")


@dev_app.command("up")
def dev_up(service: Only = None) -> None:
    """Start the servers (idempotent) and wait until each answers."""
    from fulcrum.devstack.stack import DevStack

    DevStack(_settings()).up(_say, only=service)


@dev_app.command("down")
def dev_down(service: Only = None) -> None:
    """Stop the servers cleanly."""
    from fulcrum.devstack.stack import DevStack

    DevStack(_settings()).down(_say, only=service)


@dev_app.command("status")
def dev_status() -> None:
    """Print each server's state as JSON; exit 1 unless all are ready."""
    from fulcrum.devstack.stack import DevStack

    status = DevStack(_settings()).status()
    _say(json.dumps(status, indent=2))
    if any(state != "ready" for state in status.values()):
        raise typer.Exit(1)


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Apply migrations as the owner role."""
    from fulcrum.kit.migrate import migrate

    migrate(_settings(), revision)
    _say(f"migrated to {revision}")


@events_app.command("setup")
def events_setup() -> None:
    """Create or update the event streams and the worker's consumer (operator identity)."""
    from fulcrum.admin import setup_events

    for line in asyncio.run(setup_events(_settings())):
        _say(f"{line}: ready")


@tenants_app.command("create")
def tenants_create(
    name: str,
    owner_user_id: Annotated[
        str | None, typer.Option(help="Clerk user id to make the first owner member.")
    ] = None,
) -> None:
    """Create a tenant and print its first owner API key (shown once)."""
    from fulcrum.admin import create_tenant

    tenant, issued = asyncio.run(create_tenant(_settings(), name, owner_user_id))
    _say(f"tenant {tenant.id} ({tenant.name}) created")
    _say(f"owner API key (shown once, store it now): {issued.secret}")


def _say_limits(tenant: Tenant) -> None:
    c = tenant.ceiling
    origin = "custom" if tenant.custom_limits else f"the {tenant.plan} plan's"
    _say(
        f"tenant {tenant.id} ({tenant.name}): plan {tenant.plan}; limits ({origin}): "
        f"{c.tenant_rate:g}/s burst {c.tenant_burst} per tenant, "
        f"{c.key_rate:g}/s burst {c.key_burst} per key or user"
    )


@tenants_app.command("set-plan")
def tenants_set_plan(
    tenant: Annotated[str, typer.Argument(help="Tenant id or name.")],
    plan: Annotated[str, typer.Argument(help="free, standard or enterprise.")],
) -> None:
    """Put a tenant on a plan (its default ceilings; the tenant can only lower them)."""
    from fulcrum.admin import set_tenant_plan

    _say_limits(asyncio.run(set_tenant_plan(_settings(), tenant, plan)))


@tenants_app.command("set-limits")
def tenants_set_limits(
    tenant: Annotated[str, typer.Argument(help="Tenant id or name.")],
    *,
    per_second: Annotated[float | None, typer.Option(help="Tenant-wide refill per second.")] = None,
    burst: Annotated[int | None, typer.Option(help="Tenant-wide bucket size.")] = None,
    key_per_second: Annotated[
        float | None, typer.Option(help="Refill per second of each key or user.")
    ] = None,
    key_burst: Annotated[int | None, typer.Option(help="Bucket size of each key or user.")] = None,
    reset: Annotated[
        list[str] | None,
        typer.Option(
            help="Give a limit back to the plan: per_second, burst, key_per_second, key_burst."
        ),
    ] = None,
) -> None:
    """Give a tenant custom ceilings instead of its plan's (the tenant can only lower them)."""
    from fulcrum.admin import set_tenant_limits

    given: dict[str, float | None] = {
        "per_second": per_second,
        "burst": burst,
        "key_per_second": key_per_second,
        "key_burst": key_burst,
    }
    limits: dict[str, float | None] = {k: v for k, v in given.items() if v is not None}
    limits.update({name: None for name in reset or []})
    _say_limits(asyncio.run(set_tenant_limits(_settings(), tenant, limits)))


@platform_app.command("create")
def platform_keys_create(name: str) -> None:
    """Create a platform key (scope tenants:admin) and print it once."""
    from fulcrum.admin import create_platform_key

    secret = asyncio.run(create_platform_key(_settings(), name))
    _say(f"platform API key (shown once, store it now): {secret}")


@policy_app.command("test")
def policy_test(
    files: Annotated[list[Path], typer.Argument(help="Case files or directories of them.")],
) -> None:
    """Run YAML decision cases against policies; exit 1 on any mismatch."""
    from fulcrum.policytest.runner import run

    outcome = run(files, _say)
    if outcome.failed or not outcome.passed:
        raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[str | None, typer.Option(help="Tenant id or name.")] = None,
    from_seq: Annotated[int, typer.Option("--from", help="First sequence number.")] = 1,
    to_seq: Annotated[int | None, typer.Option("--to", help="Last (default: newest).")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Verify this exported bundle, offline, instead.")
    ] = None,
    public_keys: Annotated[
        Path | None, typer.Option(help="PEM file of the audit keys you trust (with --bundle).")
    ] = None,
) -> None:
    """Recompute a tenant's hash chain and check its signed checkpoints and their anchors
    (or those of a bundle, with no database); exit 1 if broken, 2 if unusable."""
    if (tenant is None) == (bundle is None):
        raise InvalidArgument("give either --tenant or --bundle", field="tenant")
    if bundle is not None:
        _verify_bundle(bundle, public_keys)
        return
    if public_keys is not None:
        raise InvalidArgument("--public-keys goes with --bundle", field="public_keys")
    from fulcrum.admin import verify_ledger

    assert tenant is not None
    result = asyncio.run(verify_ledger(_settings(), tenant, from_seq, to_seq))
    if result.ok:
        _say(f"ok: {result.checked} records verified")
        return
    _say(f"FAILED at seq {result.first_bad_seq}: {result.problem}: {result.detail}")
    raise typer.Exit(1)


def _verify_bundle(bundle: Path, public_keys: Path | None) -> None:
    from fulcrum.audit.bundle import verify_bundle

    try:
        trusted = public_keys.read_bytes() if public_keys is not None else None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {public_keys}: {exc}", field="public_keys") from exc

    def progress(records: int) -> None:
        typer.echo(f"... {records} records verified", err=True)

    verdict = verify_bundle(bundle, trusted, progress=progress)
    header, result = verdict.header, verdict.result
    end = header.to_seq if header.to_seq is not None else "end"
    _say(
        f"bundle of tenant {header.tenant_id}, records {header.from_seq}-{end}, exported "
        f"{header.exported_at.isoformat()}"
    )
    if verdict.keys_from_bundle:
        _say(
            "warning: checked with the public keys inside the bundle itself, which only shows "
            "it is self-consistent; pass --public-keys with keys you trust"
        )
    else:
        _say(f"keys: {public_keys}")
    if not result.ok:
        _say(f"FAILED at seq {result.first_bad_seq}: {result.problem}: {result.detail}")
        raise typer.Exit(1)
    _say(f"ok: {result.checked} records verified")
    last = header.from_seq + result.checked - 1
    if verdict.newest_pin is None:
        _say("note: no signature in the bundle pins any of its records")
    elif verdict.newest_pin < last:
        _say(f"note: records {verdict.newest_pin + 1}-{last} are pinned by no signature yet")


@audit_app.command("export")
def audit_export(
    tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
    bundle: Annotated[Path, typer.Option(help="File to write (JSON lines).")],
    from_seq: Annotated[int, typer.Option("--from", help="First sequence number.")] = 1,
    to_seq: Annotated[int | None, typer.Option("--to", help="Last (default: newest).")] = None,
) -> None:
    """Write a range's records, checkpoints, anchors and public keys to one file that
    `fulcrum audit verify --bundle` checks offline."""
    from fulcrum.admin import export_ledger

    if from_seq < 1 or (to_seq is not None and to_seq < from_seq):
        raise InvalidArgument("need 1 <= --from <= --to", field="from")
    count = asyncio.run(export_ledger(_settings(), tenant, bundle, from_seq, to_seq))
    _say(f"{count} records written to {bundle}")


@dev_app.command("token")
def dev_token(
    tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
    role: Annotated[str, typer.Option(help="owner, admin, policy_author, ... viewer")],
    user: Annotated[str | None, typer.Option(help="User id (default dev_<role>).")] = None,
) -> None:
    """Sign a development session token for a member of TENANT with ROLE."""
    from fulcrum.admin import dev_token as sign

    _say(asyncio.run(sign(_settings(), tenant, role, user)))


def _log_as(service: str, settings: Settings, slot: int | None = None) -> None:
    file = settings.log_file
    configure_logging(
        service,
        settings.log_level,
        file=numbered(file, slot) if file is not None and slot is not None else file,
        max_bytes=settings.log_file_max_mb << 20,
        backups=settings.log_file_backups,
        fields=None if slot is None else {"slot": slot, "pid": os.getpid()},
    )


@app.command()
def api() -> None:
    """Serve gRPC and REST (FULCRUM_API_PROCESSES processes sharing the ports)."""
    settings = _settings()
    _log_as("api", settings)
    if settings.api_processes == 1:
        from fulcrum.transports.serve import serve_api

        eventloop.run(serve_api(settings))
        return
    from fulcrum.transports.supervise import supervise_api

    # The supervisor does no request work: the standard event loop is enough.
    reason = asyncio.run(supervise_api(settings))
    if reason is not None:
        typer.echo(f"error: {reason}", err=True)
        raise typer.Exit(1)


@app.command("api-process", hidden=True)
def api_process(
    slot: Annotated[int, typer.Option()],
    listen_fd: Annotated[int, typer.Option()],
    lifeline_fd: Annotated[int, typer.Option()],
) -> None:
    """One serving process of a supervised `fulcrum api` (the supervisor starts it)."""
    import socket

    from fulcrum.serving.lifeline import Lifeline
    from fulcrum.transports.serve import Supervised, serve_api

    settings = _settings()
    _log_as("api", settings, slot)
    supervised = Supervised(slot, socket.socket(fileno=listen_fd), Lifeline(lifeline_fd))
    eventloop.run(serve_api(settings, supervised))


@app.command()
def worker() -> None:
    """Consume JetStream and report health."""
    from fulcrum.worker.main import run_worker

    settings = _settings()
    _log_as("worker", settings)
    eventloop.run(run_worker(settings))


@app.command()
def up(
    keep_servers: Annotated[
        bool, typer.Option(help="Leave PostgreSQL, Redis and NATS running on exit.")
    ] = False,
) -> None:
    """Run the whole stack in the foreground and print the URLs to use."""
    from fulcrum.launcher import run_stack

    raise typer.Exit(run_stack(_settings(), _say, keep_servers=keep_servers))


def main() -> None:
    try:
        app()
    except FulcrumError as exc:
        where = f"{exc.field}: " if exc.field else ""
        typer.echo(f"error: {where}{exc.message}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
