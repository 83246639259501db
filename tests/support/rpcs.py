"""Every RPC of Fulcrum's own protobuf services, by full method name."""

from __future__ import annotations

import importlib
import pkgutil

import fulcrum.pb.v1 as pb


def all_rpcs() -> list[str]:
    rpcs = []
    for info in pkgutil.iter_modules(pb.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{pb.__name__}.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                rpcs += [f"/{service.full_name}/{m.name}" for m in service.methods]
    return rpcs
