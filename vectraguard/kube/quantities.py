"""Kubernetes resource quantities: written from a profile's values, and read back to check them.

The grammar is apimachinery's `resource.Quantity` (k8s.io/apimachinery/pkg/api/resource/quantity.go):

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E | <decimalExponent>

The OpenAPI schema gives a quantity only as "int or string", so a schema
validator lets `memory: lots` through; `parse` is what the tests (and the
generator's own last check, generate.py) read generated quantities with.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = re.compile(r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def parse(value: str | int) -> Decimal:
    """The quantity's value in base units (bytes, cores). ValueError if `value`
    is not a quantity by apimachinery's grammar (e.g. "lots", "1.5 Gi", "")."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{value!r} is not a quantity (a number or a string)")  # noqa: TRY004 - one error for every bad quantity
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 512Mi, 1500m, 2)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])


def cpu(cpus: float) -> str:
    """CPUs (a profile's limits.cpus) as millicores, e.g. 1.5 -> "1500m".
    Kubernetes keeps at most millicore precision; finer values are rounded up,
    never to zero (a zero limit would mean none)."""
    millicores = max(1, math.ceil(Decimal(str(cpus)) * 1000))
    return f"{millicores}m"


def memory(size: int) -> str:
    """Bytes as the exact quantity: Gi/Mi/Ki when whole, else plain bytes."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if size >= _BINARY[suffix] and size % _BINARY[suffix] == 0:
            return f"{size // _BINARY[suffix]}{suffix}"
    return str(size)
