"""A session's published ports as `ps` and `inspect` show them (docker's PORTS habit).

Read from the session's `started` record (`network.publish`: the specs as
given, network/publish_spec.py), written `HOST_ADDR:HOST_PORT->PORT/tcp`
as `docker ps` writes them (`127.0.0.1:8080->3000/tcp`, `[::1]:8080->3000/tcp`).
A spec that does not parse (an edited record) is shown as recorded.
"""

from __future__ import annotations

from typing import Any


def published(started: dict[str, Any]) -> list[str]:
    """The session's published ports, one `ADDR:HOST_PORT->PORT/tcp` each, in the order given."""
    from vectraguard.network.publish_spec import parse

    network = started.get("network")
    specs = network.get("publish") if isinstance(network, dict) else None
    shown = []
    for spec in specs if isinstance(specs, list) else []:
        try:
            port = parse(str(spec))
        except ValueError:
            shown.append(str(spec))
            continue
        address = f"[{port.host_address}]" if ":" in port.host_address else port.host_address
        shown.append(f"{address}:{port.host_port}->{port.port}/tcp")
    return shown
