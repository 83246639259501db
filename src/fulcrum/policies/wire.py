"""A policy and its versions on each wire: protobuf (``fulcrum.v1.Policy``) and the REST
body. The document travels as JSON text in protobuf and as an object in REST."""

from __future__ import annotations

import json
from typing import Any

from fulcrum.kit.timestamps import timestamp
from fulcrum.pb.v1 import policies_pb2
from fulcrum.policies.models import Policy, PolicyVersion


def _policy_fields(p: Policy) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "status": p.status.value,
        "mode": p.mode,
        "priority": p.priority,
        "version": p.current_version,
    }


def policy_body(p: Policy) -> dict[str, Any]:
    return {
        **_policy_fields(p),
        "document": p.document,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def policy_message(p: Policy) -> policies_pb2.Policy:
    return policies_pb2.Policy(
        **_policy_fields(p),
        document_json=json.dumps(p.document, sort_keys=True),
        create_time=timestamp(p.created_at),
        update_time=timestamp(p.updated_at),
    )


def _version_fields(v: PolicyVersion) -> dict[str, Any]:
    return {"policy_id": str(v.policy_id), "version": v.version, "author": v.author}


def version_body(v: PolicyVersion) -> dict[str, Any]:
    return {**_version_fields(v), "document": v.document, "created_at": v.created_at}


def version_message(v: PolicyVersion) -> policies_pb2.GetPolicyVersionResponse:
    return policies_pb2.GetPolicyVersionResponse(
        **_version_fields(v),
        document_json=json.dumps(v.document, sort_keys=True),
        create_time=timestamp(v.created_at),
    )
