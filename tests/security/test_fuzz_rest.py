"""Property: no REST operation answers 5xx to anything, and a refused call changes nothing.

Schemathesis generates requests for every operation of the live API's ``/openapi.json``,
inputs that fit the schema and inputs that do not, with path ids that exist and ids that
do not, and ``tests/support/hostile.py`` plants a hostile value (NUL, a lone surrogate, a
5,000-digit integer, NaN, deep nesting, ...) into one query, path or body slot of most of
them. Policy documents, which the schema gives only as "an object", come from a strategy
shaped like the policy schema. Calls carry a tenant owner's key (the ``/v1/tenants``
operations, which only a platform key may call, a platform key). After every call the
tenant's rows are read as the superuser: a call the server refused (4xx) must have left
them as they were. Examples are bounded and derandomized: reproducible, about a minute.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema

from fulcrum.transports.rest.app import create_app
from tests.support import hostile
from tests.support.fuzz_tenant import FuzzTenant
from tests.support.identity import platform_key
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack
from tests.support.tenant_rows import TenantRows

EXAMPLES = 6  # per operation, generation mode, and real or random ids
POLICY_DOCUMENT_EXAMPLES = 40
# Headers the HTTP client sets itself; the credential is ours, never a generated one.
_OWN_HEADERS = {"user-agent", "accept-encoding", "accept", "connection", "content-length"}
_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: the server keeps state, so a shrunk input may no longer fail, and a
    # failure's first input is the one worth reading.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
DOCUMENT_OPERATIONS = [
    ("POST", "/v1/policies"),
    ("PUT", "/v1/policies/{policy_id}"),
    ("POST", "/v1/policies:simulate"),
]


SPEC = create_app(cast(Any, None), cast(Any, None)).openapi()
OPERATIONS = [(method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops]


def _parameters(method: str, path: str) -> list[dict[str, Any]]:
    return list(SPEC["paths"][path][method.lower()].get("parameters", []))


URL_OPERATIONS = [(m, p) for m, p in OPERATIONS if _parameters(m, p)]

_DECISION = {
    "tool": {"name": "db.query", "args": {"sql": "select 1", "n": [1, {"k": "v"}]}},
    "agent": {"id": "agent-1", "roles": ["ops"]},
    "transport": "mcp",
    "input": {"text": "hello"},
    "model": {"id": "m-1"},
    "cost": {"estimate": 0.5},
    "context": {"env": "prod"},
    "explain": True,
}
# A valid body for each operation that takes a JSON body other than a policy document
# (test_policy_documents has those): the sweep plants each hostile value at each leaf.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/tenants"): {"name": "swept", "owner_user_id": "user_swept"},
    ("POST", "/v1/members"): {"external_user_id": "u2", "role": "viewer"},
    ("PATCH", "/v1/members/{member_id}"): {"role": "auditor"},
    ("POST", "/v1/api-keys"): {
        "name": "k2",
        "scopes": ["keys:read"],
        "expires_at": "2999-01-01T00:00:00Z",
    },
    ("POST", "/v1/policies:simulate"): {
        "policy": {"name": "p", "rules": [{"id": "r", "action": "deny", "reason": "no"}]},
        "requests": [_DECISION],
    },
    ("POST", "/v1/decisions"): _DECISION,
    ("POST", "/v1/decisions:batch"): {"requests": [_DECISION]},
    ("PATCH", "/v1/settings"): {
        "default_action": "deny",
        "rate_limit": {"per_second": 100.0, "burst": 200, "key_per_second": 50.0},
    },
}


@pytest.fixture(scope="module")
def live_schema(api: FulcrumProcess) -> BaseSchema:
    with api.http() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


@pytest.fixture(scope="module")
def rows(stack: LiveStack) -> Iterator[TenantRows]:
    with TenantRows(stack) as tenant_rows:
        yield tenant_rows


def test_every_live_operation_is_fuzzed(live_schema: BaseSchema) -> None:
    paths = live_schema.raw_schema["paths"]
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == set(OPERATIONS)
    assert set(DOCUMENT_OPERATIONS) <= set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_refusals_change_nothing(
    stack: LiveStack,
    api: FulcrumProcess,
    live_schema: BaseSchema,
    rows: TenantRows,
    method: str,
    path: str,
) -> None:
    fuzzed = FuzzTenant(stack, api, rows)
    credential = platform_key(stack) if path.startswith("/v1/tenants") else fuzzed.tenant.owner_key
    operation = live_schema[path][method]
    real_ids = {p.name: fuzzed.ids[p.name] for p in operation.path_parameters}
    with api.http(credential) as client:

        def check(case: Case, plan: hostile.Plant) -> None:
            _check(fuzzed, *_send(client, case, plan))

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, mode, None, check)
            if real_ids:
                _run(operation, mode, real_ids, check)


@pytest.mark.parametrize(("method", "path"), DOCUMENT_OPERATIONS)
def test_policy_documents(
    stack: LiveStack, api: FulcrumProcess, rows: TenantRows, method: str, path: str
) -> None:
    fuzzed = FuzzTenant(stack, api, rows)
    target = path.replace("{policy_id}", fuzzed.ids["policy_id"])
    with api.http(fuzzed.tenant.owner_key) as client:

        @settings(_SETTINGS, max_examples=POLICY_DOCUMENT_EXAMPLES)
        @given(document=hostile.policy_documents, plan=hostile.plants)
        def one(document: dict[str, Any], plan: hostile.Plant) -> None:
            hostile.plant(plan, [], document)
            body = document
            if path.endswith(":simulate"):
                body = {"policy": document, "requests": [{"tool": {"name": "db.query"}}]}
            content = hostile.dumps(body)
            response = client.request(
                method, target, content=content, headers={"content-type": "application/json"}
            )
            _check(fuzzed, response, f"{method} {target} {content[:300]!r}")

        one()


@pytest.mark.parametrize(
    ("method", "path"), URL_OPERATIONS, ids=[f"{m} {p}" for m, p in URL_OPERATIONS]
)
def test_every_url_parameter_takes_every_hostile_text(
    stack: LiveStack, api: FulcrumProcess, rows: TenantRows, method: str, path: str
) -> None:
    """Not left to chance: each query and path parameter, with the path's other ids ones that
    exist, gets each hostile text in turn."""
    fuzzed = FuzzTenant(stack, api, rows)
    credential = platform_key(stack) if path.startswith("/v1/tenants") else fuzzed.tenant.owner_key
    parameters = _parameters(method, path)
    with api.http(credential) as client:
        for parameter in parameters:
            for text in hostile.URL_TEXT:
                ids = {p["name"]: fuzzed.ids[p["name"]] for p in parameters if p["in"] == "path"}
                query: dict[str, str] = {}
                if parameter["in"] == "path":
                    ids[parameter["name"]] = text
                else:
                    query[parameter["name"]] = text
                target = path.format(**{k: quote(v, safe="") for k, v in ids.items()})
                response = client.request(method, target, params=query)
                _check(fuzzed, response, f"{method} {target} {query!r:.300}")


@pytest.mark.parametrize(
    ("method", "path"), list(VALID_BODIES), ids=[f"{m} {p}" for m, p in VALID_BODIES]
)
def test_every_body_leaf_takes_every_hostile_value(
    stack: LiveStack, api: FulcrumProcess, rows: TenantRows, method: str, path: str
) -> None:
    """Not left to chance: each leaf of a valid body (and each object, given a hostile new
    key) gets each hostile JSON value in turn, the rest of the body staying valid."""
    fuzzed = FuzzTenant(stack, api, rows)
    credential = platform_key(stack) if path.startswith("/v1/tenants") else fuzzed.tenant.owner_key
    target = path.format(**fuzzed.ids)
    slots = hostile.slot_count([], VALID_BODIES[method, path])
    with api.http(credential) as client:
        for slot in range(slots):
            for value in hostile.JSON_VALUES:
                body = copy.deepcopy(VALID_BODIES[method, path])
                hostile.plant((slot, value, ""), [], body)
                content = hostile.dumps(body)
                response = client.request(
                    method, target, content=content, headers={"content-type": "application/json"}
                )
                _check(fuzzed, response, f"{method} {target} {content[:300]!r}")


def _check(fuzzed: FuzzTenant, response: httpx.Response, sent: str) -> None:
    said = f"{sent}\n-> {response.status_code} {response.text[:300]}"
    fuzzed.check(response.status_code >= 500, response.status_code >= 400, said)


def _run(
    operation: APIOperation,
    mode: GenerationMode,
    path_parameters: dict[str, str] | None,
    check: Callable[[Case, hostile.Plant], None],
) -> None:
    cases = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(_SETTINGS, max_examples=EXAMPLES)
    @given(case=cases, plan=hostile.plants)
    def one(case: Case, plan: hostile.Plant) -> None:
        check(case, plan)

    try:
        one()
    except Unsatisfiable:
        # Nothing to break: no parameters or body (or only the path ids, which are fixed).
        if mode is not GenerationMode.NEGATIVE:
            raise


def _send(client: httpx.Client, case: Case, plan: hostile.Plant) -> tuple[httpx.Response, str]:
    """Schemathesis serializes the case (requests' keywords), the plan plants a hostile value
    in a copy (a planted case would fail schemathesis's own revalidation), the process's
    client sends it."""
    kwargs = case.as_transport_kwargs(base_url="http://fuzz.invalid")
    headers = {
        name: value
        for name, value in kwargs.get("headers", {}).items()
        if name.lower() not in _OWN_HEADERS and name.lower() != "authorization"
    }
    params = dict(kwargs.get("params") or {})
    path_parameters = dict(case.path_parameters or {})
    body = copy.deepcopy(kwargs.get("json"))
    hostile.plant(plan, [params, path_parameters], body)
    content: bytes | None = None
    if "json" in kwargs:
        content = hostile.dumps(body)
    elif "data" in kwargs:
        data = kwargs["data"]
        content = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
    path = case.path.format(**{k: quote(str(v), safe="") for k, v in path_parameters.items()})
    request = client.build_request(
        kwargs["method"], path, params=params, headers=headers, content=content
    )
    sent = f"{request.method} {request.url.raw_path.decode()[:300]} {(content or b'')[:300]!r}"
    return client.send(request), sent
