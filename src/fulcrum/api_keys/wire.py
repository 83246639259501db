"""An API key on each wire: protobuf (``fulcrum.v1.ApiKey``) and the REST body. Neither
ever carries the hash; the secret travels only in the answer that creates it."""

from __future__ import annotations

from typing import Any

from fulcrum.api_keys.models import ApiKey
from fulcrum.kit.timestamps import timestamp
from fulcrum.pb.v1 import api_keys_pb2


def _fields(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "scopes": sorted(k.scopes),
        "created_by": k.created_by,
        "service": k.service,
    }


def api_key_body(k: ApiKey) -> dict[str, Any]:
    return {
        **_fields(k),
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "last_used_at": k.last_used_at,
        "rotated_from": k.rotated_from,
        # the member the key belongs to; null for a service key
        "owner": str(k.owner_member_id) if k.owner_member_id else None,
    }


def api_key_message(k: ApiKey) -> api_keys_pb2.ApiKey:
    return api_keys_pb2.ApiKey(
        **_fields(k),
        create_time=timestamp(k.created_at),
        expire_time=timestamp(k.expires_at),
        revoke_time=timestamp(k.revoked_at),
        last_used_time=timestamp(k.last_used_at),
        rotated_from=k.rotated_from or "",
        owner=str(k.owner_member_id) if k.owner_member_id else "",
    )
