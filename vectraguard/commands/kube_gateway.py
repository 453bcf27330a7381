"""`vectraguard kube gateway`: the egress gateway a Kubernetes sandbox pod goes out through.

It imports only the network code it serves with (vectraguard/kube/gateway.py):
no profile, policy or audit machinery, so that its image needs nothing else.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from vectraguard import errors
from vectraguard.kube import gateway


def main(args: argparse.Namespace) -> int:
    settings = gateway.settings_from(args.listen, args.session, args.profile_digest, args.allow,
                                     args.max_connections)
    gateway.block_stop_signals()
    try:
        gateway.serve(settings, sys.stdout)
    except errors.VGError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug; the gateway writes no file, so the place goes in the one line
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        place = f" at {where.filename}:{where.lineno}" if where else ""
        raise errors.RuntimeUnavailable(f"{gateway.PROG}: internal error{place}: {exc.__class__.__name__}: {exc}",
                                        hint="please report this as a bug") from None
    return 0
