"""A database dump holds no API key secret in any form except its HMAC hash."""

from __future__ import annotations

import base64
import hashlib
import subprocess

from fulcrum.auth.api_keys import hash_key
from fulcrum.devstack.postgres import SUPERUSER, _pg_bin
from fulcrum.kit.config import Service
from fulcrum.kit.secrets import Secrets
from tests.support.identity import new_tenant, platform_key, rest
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack


def forms_of(key: str) -> list[str]:
    secret = key.split("_", 2)[2]  # fk_<key id>_<secret>; the secret may contain "_"
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    return [
        key,
        secret,
        raw.hex(),
        base64.b64encode(raw).decode().rstrip("="),
        hashlib.sha256(key.encode()).hexdigest(),
        hashlib.sha256(secret.encode()).hexdigest(),
        hashlib.sha256(raw).hexdigest(),
    ]


def test_dump_contains_only_hashes(stack: LiveStack, api: FulcrumProcess) -> None:
    tenant = new_tenant(stack, "dump")
    with rest(api, tenant.owner_key) as client:
        created = client.post("/v1/api-keys", json={"name": "agent", "scopes": ["keys:read"]})
        assert created.status_code == 201
        rotated = client.post(f"/v1/api-keys/{created.json()['api_key']['id']}/rotate")
        assert rotated.status_code == 200
    keys = [
        tenant.owner_key,
        created.json()["secret"],
        rotated.json()["secret"],
        platform_key(stack),
    ]

    s = stack.settings
    dump = subprocess.run(
        [
            _pg_bin("pg_dump"),
            "-h",
            str(stack.devstack.postgres.socket_dir),
            "-p",
            str(s.database_port),
            "-U",
            SUPERUSER,
            "--data-only",
            s.database_name,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    pepper = Secrets(s, Service.API).require("key_pepper").get()
    for key in keys:
        for form in forms_of(key):
            assert form not in dump
        # Positive control: the dump does carry the keys table, as hashes.
        assert hash_key(pepper, key).hex() in dump
