"""`vectraguard pool start|stop|list`: sandboxes kept initialised ahead of the runs."""

from __future__ import annotations

import argparse
import time

from vectraguard import errors
from vectraguard.pool import store


def main(args: argparse.Namespace) -> int:
    if args.pool_command == "start":
        return _start(args)
    if args.pool_command == "stop":
        return _stop(args)
    return _list(args)


def _start(args: argparse.Namespace) -> int:
    """Fill the pool for the run these options describe, here, now; later runs keep it filled."""
    from vectraguard.commands import run
    from vectraguard.pool import plan
    from vectraguard.pool.fill import fill
    from vectraguard.runtime import service
    from vectraguard.runtime.owner import current_owner

    if args.command:
        raise errors.UsageError("vectraguard: `pool start` takes no command: the runs that use the pool give theirs")
    cwd = run.working_directory()
    args.command = ["true"]  # what is judged here: the pool's sandboxes run nothing until a run claims one
    prepared = run.prepare(args, cwd, run.new_session_id(), current_owner())
    if prepared.publisher is not None:  # published ports belong to the run that claims a sandbox, not to the pool
        prepared.publisher.close()
    profile, spec = prepared.profile, prepared.compiled.spec
    why = plan.why_not(spec, profile.workspace_mode)
    if why is not None:
        raise errors.UsageError(f"vectraguard: profile {profile.name!r} cannot have a pool here: {why}")
    size = args.number if args.number is not None else max(profile.pool, 2)
    wanted = plan.plan(profile.name, profile.pool, profile.pool_idle, cwd, spec, prepared.expected_mounts,
                       profile.workspace_mode, size=size)
    assert wanted is not None  # why_not said it can
    store.set_size(wanted.slot, size, profile.pool_idle)
    client = service.connect(spec.oci_runtime)
    fill(client, spec, wanted)
    ready = sum(1 for found, _ in store.ready(wanted.slot) if found.key == wanted.key)
    print(f"pool for profile {profile.name} in {cwd}: {ready} ready, {size} kept "
          f"(each removed after {profile.pool_idle:g}s unused)")
    if ready < size:
        raise errors.RuntimeUnavailable(f"vectraguard: Podman made only {ready} of the {size} pooled sandboxes",
                                        hint="`vectraguard -vv pool start ...` says why; runs still work, cold")
    return 0


def _stop(args: argparse.Namespace) -> int:
    """Remove the ready sandboxes (of one profile, with -p) and stop refilling them."""
    from vectraguard.pool.fill import discard
    from vectraguard.runtime import host, service

    client = service.connect(host.detect().oci_runtime)
    removed = 0
    for found, path in list(store.ready()):
        if args.profile is None or found.profile == args.profile:
            store.set_size(found.slot, 0, 0)
            removed += discard(client, found, path)
    if args.profile is None:
        from vectraguard.pool.reap import reap_pool

        removed += len(reap_pool(client))  # and those no index lists (a fill that was killed)
    print(f"removed {removed} pooled sandbox{'es' if removed != 1 else ''}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from vectraguard import output

    now = time.time()
    rows = [{"profile": found.profile, "directory": found.cwd, "container": found.cid[:12],
             "age": f"{now - found.created:.0f}s", "idle_limit": f"{found.idle:g}s"}
            for found, _ in store.ready()]
    if args.json:
        output.print_json(rows)
    elif rows:
        output.print_table(rows, ["profile", "directory", "container", "age", "idle_limit"])
    else:
        print("no pooled sandboxes")
    return 0
