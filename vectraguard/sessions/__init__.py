"""Running sessions: which sandboxes of this user run now, what they use,
and stopping, entering and inspecting them (`ps`, `stop`, `exec`, `inspect`).

The one source of truth for "running" is this user's audit store: a session
whose `started` record has no `finished` (status still `started`) and whose
owning `vectraguard` process (PID:STARTTIME, runtime/owner.py) is alive.
It covers every isolation level (a `lite` sandbox has no container), it is
per user (another user's sessions are in their store, which this user
cannot read), and it is what `logs` shows. Containers (found by their
session label) and cgroups are looked up from it, never the other way
round.
"""
