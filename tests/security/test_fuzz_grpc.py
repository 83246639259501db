"""Property: no gRPC method answers INTERNAL or UNKNOWN, and a refused call changes nothing.

For every RPC (``all_rpcs``), with a tenant owner's key (a platform key for TenantService):
random bytes, and messages built by walking the request's protobuf descriptor: every field
optional, strings with NUL and odd Unicode, integers at their type's limits, NaN and
infinite doubles, unknown enum numbers, nested messages, maps and repeated fields, ids that
exist, and policy documents with a hostile value planted in them. Messages are built of
ordinary values and then one hostile value is planted, so it travels with valid ones and
reaches the code behind the first checks.
After every call the tenant's rows are read as the superuser; a refused call must have
left them as they were. Examples are bounded and derandomized.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import hostile
from tests.support.fuzz_tenant import FuzzTenant
from tests.support.identity import platform_key
from tests.support.processes import FulcrumProcess
from tests.support.rpcs import all_rpcs
from tests.support.stack import LiveStack
from tests.support.tenant_rows import TenantRows

STRUCTURED_EXAMPLES = 25
RANDOM_BYTES_EXAMPLES = 8
MAX_DEPTH = 3  # message fields deeper than this are left unset (Struct nests without end)
SERVER_ERRORS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: the server keeps state
    suppress_health_check=list(HealthCheck),
)

_F = FieldDescriptor
_INTEGERS = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _method(rpc: str) -> MethodDescriptor:
    service, name = rpc.strip("/").split("/")
    return descriptor_pool.Default().FindServiceByName(service).FindMethodByName(name)


RPCS = all_rpcs()


@pytest.fixture(scope="module")
def rows(stack: LiveStack) -> Iterator[TenantRows]:
    with TenantRows(stack) as tenant_rows:
        yield tenant_rows


def test_every_rpc_has_a_request_type() -> None:
    assert len(RPCS) >= 30
    assert all(not _method(rpc).client_streaming for rpc in RPCS)


@pytest.mark.parametrize("rpc", RPCS)
def test_no_server_error_and_refusals_change_nothing(
    stack: LiveStack, api: FulcrumProcess, rows: TenantRows, rpc: str
) -> None:
    fuzzed = FuzzTenant(stack, api, rows)
    credential = platform_key(stack) if "/TenantService/" in rpc else fuzzed.tenant.owner_key
    metadata = (("authorization", f"Bearer {credential}"),)
    method = _method(rpc)
    plans = st.none() | st.tuples(st.integers(0, 1000), st.integers(0, 1000))
    structured = st.builds(_planted, messages(method.input_type, fuzzed.ids), plans).map(
        lambda m: m.SerializeToString()
    )
    with api.channel() as channel:
        call = _caller(channel, rpc, method)

        def one(payload: bytes) -> None:
            code, details = _outcome(call, payload, metadata)
            said = f"{rpc} {payload[:300]!r}\n-> {code.name} {details[:300]}"
            fuzzed.check(code in SERVER_ERRORS, code is not grpc.StatusCode.OK, said)

        for payloads, examples in (
            (structured, STRUCTURED_EXAMPLES),
            (st.binary(max_size=200), RANDOM_BYTES_EXAMPLES),
        ):
            _fuzz(payloads, examples, one)


@pytest.mark.parametrize("rpc", RPCS)
def test_every_field_takes_every_hostile_value(
    stack: LiveStack, api: FulcrumProcess, rows: TenantRows, rpc: str
) -> None:
    """Not left to chance: each scalar field of a request (and of its message fields), the
    other fields ordinary (ids that exist, a valid policy document), gets each hostile
    value in turn."""
    fuzzed = FuzzTenant(stack, api, rows)
    credential = platform_key(stack) if "/TenantService/" in rpc else fuzzed.tenant.owner_key
    metadata = (("authorization", f"Bearer {credential}"),)
    method = _method(rpc)
    base = message_factory.GetMessageClass(method.input_type)()
    for f in method.input_type.fields:
        if f.name in fuzzed.ids and f.message_type is None and not f.is_repeated:
            value = fuzzed.ids[f.name]
            setattr(base, f.name, value if f.type == _F.TYPE_STRING else int(value))
        elif f.name == "document":
            setattr(base, f.name, VALID_DOCUMENT)
    with api.channel() as channel:
        call = _caller(channel, rpc, method)
        for path, f in _sweep_targets(method.input_type):
            for value in _odd(f):
                message = type(base)()
                message.CopyFrom(base)
                owner = message
                for name in path[:-1]:
                    owner = getattr(owner, name)
                _set(owner, f, value)
                payload = message.SerializeToString()
                code, details = _outcome(call, payload, metadata)
                where = ".".join(path)
                said = f"{rpc} {where}={value!r:.100}\n-> {code.name} {details[:300]}"
                fuzzed.check(code in SERVER_ERRORS, code is not grpc.StatusCode.OK, said)


def _sweep_targets(descriptor: Descriptor) -> Iterator[tuple[list[str], FieldDescriptor]]:
    """Scalar fields of the request and of its singular message fields (one level down)."""
    for f in descriptor.fields:
        if f.message_type is None:
            yield [f.name], f
        elif not f.is_repeated:
            for inner in f.message_type.fields:
                if inner.message_type is None:
                    yield [f.name, inner.name], inner


VALID_DOCUMENT = '{"name":"fuzzed","rules":[{"id":"r","action":"deny","reason":"no"}]}'


def _caller(
    channel: grpc.Channel, rpc: str, method: MethodDescriptor
) -> Callable[[bytes, tuple[tuple[str, str], ...]], None]:
    if method.server_streaming:
        stream = channel.unary_stream(rpc, request_serializer=None, response_deserializer=None)

        def streamed(payload: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
            for _ in stream(payload, metadata=metadata, timeout=10):
                pass

        return streamed
    unary = channel.unary_unary(rpc, request_serializer=None, response_deserializer=None)

    def called(payload: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
        unary(payload, metadata=metadata, timeout=10)

    return called


def _outcome(
    call: Callable[[bytes, tuple[tuple[str, str], ...]], None],
    payload: bytes,
    metadata: tuple[tuple[str, str], ...],
) -> tuple[grpc.StatusCode, str]:
    try:
        call(payload, metadata)
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


def _fuzz(payloads: st.SearchStrategy[bytes], examples: int, one: Callable[[bytes], None]) -> None:
    @settings(_SETTINGS, max_examples=examples)
    @given(payload=payloads)
    def run(payload: bytes) -> None:
        one(payload)

    run()


def messages(
    descriptor: Descriptor, ids: dict[str, str], depth: int = 0
) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    fields = {
        f.name: _field(f, ids, depth)
        for f in descriptor.fields
        if f.message_type is None or depth < MAX_DEPTH
    }
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, values))


def _field(f: FieldDescriptor, ids: dict[str, str], depth: int) -> st.SearchStrategy[Any]:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        return st.dictionaries(_single(key, ids, depth), _single(value, ids, depth), max_size=3)
    one = _single(f, ids, depth)
    return st.lists(one, max_size=3) if f.is_repeated else one


def _single(f: FieldDescriptor, ids: dict[str, str], depth: int) -> st.SearchStrategy[Any]:
    """An ordinary value: hostile ones are planted afterwards, one a message, so that the
    others are ordinary and the check for the hostile one is reached."""
    if f.message_type is not None:
        return messages(f.message_type, ids, depth + 1)
    if f.type == _F.TYPE_STRING:
        words = st.text(st.characters(categories=("L", "N")), max_size=12)
        if f.name == "document":
            return _documents()
        return st.one_of(st.just(ids[f.name]), words) if f.name in ids else words
    if f.type == _F.TYPE_BYTES:
        return st.binary(max_size=8)
    if f.type == _F.TYPE_BOOL:
        return st.booleans()
    if f.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return st.floats(-1000, 1000)
    if f.type == _F.TYPE_ENUM:
        return st.sampled_from([value.number for value in f.enum_type.values])
    low = _INTEGERS[f.type][0]
    small = st.integers(max(low, -5), 300)
    return st.one_of(st.just(int(ids[f.name])), small) if f.name in ids else small


def _odd(f: FieldDescriptor) -> list[Any]:
    """Hostile values for the field's type."""
    if f.type == _F.TYPE_STRING:
        return hostile.URL_TEXT
    if f.type == _F.TYPE_BYTES:
        return [b"\xff\xfe", b"\x00" * 1000, b""]
    if f.type == _F.TYPE_BOOL:
        return [True]
    if f.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return [math.nan, math.inf, -math.inf, 3.4e38, -0.0]
    if f.type == _F.TYPE_ENUM:
        return [-1, 2**31 - 1, 99]  # proto3 enums take unknown numbers
    low, high = _INTEGERS[f.type]
    return [low, high, -1 if low else 0, 2**31 - 1 if high > 2**31 else high]


def _set(owner: Message, f: FieldDescriptor, value: Any) -> None:
    if f.is_repeated:
        getattr(owner, f.name).append(value)
    else:
        setattr(owner, f.name, value)


def _planted(message: Message, plan: tuple[int, int] | None) -> Message:
    """``message`` with one scalar field, anywhere in it, set to a hostile value."""
    if plan is None:
        return message
    slots = list(_slots(message))
    if slots:
        where, pick = plan
        owner, f = slots[where % len(slots)]
        odd = _odd(f)
        _set(owner, f, odd[pick % len(odd)])
    return message


def _slots(message: Message) -> Iterator[tuple[Message, FieldDescriptor]]:
    for f in message.DESCRIPTOR.fields:
        if f.message_type is None:
            yield message, f
        elif f.message_type.GetOptions().map_entry:
            continue
        elif f.is_repeated:
            for item in getattr(message, f.name):
                yield from _slots(item)
        elif message.HasField(f.name):
            yield from _slots(getattr(message, f.name))


def _documents() -> st.SearchStrategy[str]:
    def planted(document: dict[str, Any], plan: hostile.Plant) -> str:
        hostile.plant(plan, [], document)
        return hostile.dumps(document).decode()

    return st.builds(planted, hostile.policy_documents, hostile.plants)


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        f = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif f.is_repeated:
            for item in value:
                if isinstance(item, Message):
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        elif isinstance(value, Message):
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message
