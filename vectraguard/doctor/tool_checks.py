"""Checks of helper programs Vectra Guard calls for some features."""

from __future__ import annotations

from vectraguard.doctor.finding import Finding, ok, warn
from vectraguard.runtime.probe import first_line, run_tool, system_binary


def nftables() -> Finding:
    result = run_tool([system_binary("nft"), "--version"])
    if result.ok:
        return ok("nftables", first_line(result))
    return warn("nftables", "nft not found or not working: network allowlists will need it",
                "apt-get install nftables")


def mmdebstrap() -> Finding:
    result = run_tool(["mmdebstrap", "--version"])
    if result.ok:
        return ok("mmdebstrap", first_line(result))
    return warn("mmdebstrap", "not found: `vectraguard image build` needs it", "apt-get install mmdebstrap")
