"""Running sandboxes, seen and handled from outside: `ps`, `inspect`, `exec`,
`stop` (vectraguard/sessions/), on real Podman containers.

Each test starts its own long-running sandbox (`run -- sh -c '...; sleep
120'`) with a private audit store, so `ps` sees exactly the sessions the
test made, and ends it when done.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sessions import Running
from tests.support.terminal import Terminal
from tests.support.vg import LABEL_SESSION, Caller, outcome
from vectraguard.runtime import owner
from vectraguard.sessions import running as running_module

P = ["run", "-p", "test-untrusted"]
SECRET = "exec-secret-value-4711"  # given with --env: must reach the exec'd process, never a record
# What a sandbox's own command may find in its environment (test_isolation
# sec01: PATH HOME TERM LANG, plus container= and HOSTNAME from Podman), and the one --env gives.
ALLOWED_NAMES = {"PATH", "HOME", "TERM", "LANG", "container", "HOSTNAME", "EXEC_SECRET"}


def _start(caller: Caller, env: dict[str, str], cwd: Path, options: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    argv, full_env = caller.argv(caller.vg([*P, *options, "--env", f"EXEC_SECRET={SECRET}", "--", "sh", "-c",
                                            "id -u; echo ready; sleep 120"]), env)
    return subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture
def running(root: Caller, workspace: Path, request: pytest.FixtureRequest) -> Iterator[Running]:
    """A session of its own; `@pytest.mark.run_options(...)` adds run options."""
    data = Path(tempfile.mkdtemp(prefix="vg-sessions-data-"))
    env = {"VECTRAGUARD_DATA_DIR": str(data)}
    marker = request.node.get_closest_marker("run_options")
    proc = _start(root, env, workspace, tuple(marker.args) if marker else ())
    try:
        assert proc.stdout is not None
        uid = proc.stdout.readline().decode().strip()
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
        yield Running(root, proc, env, workspace, uid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # as Ctrl-C would: it stops and removes its sandbox
        proc.communicate(timeout=60)
        root.wait_for_removals()
        shutil.rmtree(data, ignore_errors=True)


def test_ps_lists_the_running_sandbox_with_what_it_uses(running: Running) -> None:
    [row] = running.json(["ps", "--json"])
    assert row["profile"] == "test-untrusted"
    assert row["isolation"] == "container"
    assert row["command"] == ["sh", "-c", "id -u; echo ready; sleep 120"]
    assert row["cwd"] == str(running.cwd)
    assert isinstance(row["cpu_percent"], float) and row["cpu_percent"] >= 0
    assert isinstance(row["memory_bytes"], int) and row["memory_bytes"] > 0  # sh and sleep are charged to it
    assert row["container_id"] in running.caller.sandboxes() or any(
        row["container_id"].startswith(short) for short in running.caller.sandboxes())
    assert row["age_s"] >= 0
    table = running.vg(["ps"])
    assert table.returncode == 0 and row["id"].encode() in table.stdout and b"test-untrusted" in table.stdout
    assert b"sh -c 'id -u; echo ready; sleep 120'" in table.stdout  # quoted as a shell would read it back


def test_ps_lists_nothing_once_the_session_has_ended(running: Running) -> None:
    running.proc.send_signal(signal.SIGTERM)
    running.proc.communicate(timeout=60)
    assert running.json(["ps", "--json"]) == []
    assert running.vg(["ps"]).stdout == b"no running sandboxes\n"


def test_inspect_shows_the_resolved_profile_and_the_compiled_spec(running: Running) -> None:
    session_id = running.session_id()
    shown = running.json(["inspect", session_id, "--json"])
    assert shown["id"] == session_id and shown["status"] == "started"
    assert shown["profile_resolved"]["name"] == "test-untrusted"
    assert shown["profile_resolved"]["network"]["mode"] == "none"
    assert shown["profile_resolved"]["env"]["set"] == {"EXEC_SECRET": "[redacted]"}
    assert shown["profile_resolved"]["risk"]["rules"]["count"] > 0
    spec = shown["spec"]
    assert spec["cap_drop"] == ["ALL"] and spec["no_new_privileges"] is True
    assert spec["read_only_filesystem"] is True and spec["netns"] == {"nsmode": "none"}
    assert "EXEC_SECRET" in spec["env_names"]
    text = running.vg(["inspect", session_id])
    assert text.returncode == 0 and b"container spec" in text.stdout
    # Issue 18: the command line as a shell reads it back (it was `sh -c id -u; echo ready; sleep 120`).
    assert "argv:           sh -c 'id -u; echo ready; sleep 120'\n" in text.stdout.decode()
    for out in (json.dumps(shown).encode(), text.stdout):
        assert SECRET.encode() not in out


def test_exec_runs_in_the_sandbox_as_its_command_does(running: Running) -> None:
    session_id = running.session_id()
    status = running.vg(["exec", session_id, "--", "cat", "/proc/self/status"])
    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":\t", 1) for line in status.stdout.decode().splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == running.uid and running.uid != "0"
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"  # a filter, the sandbox's
    environ = running.vg(["exec", session_id, "--", "cat", "/proc/self/environ"])
    names = {item.split(b"=", 1)[0].decode() for item in environ.stdout.split(b"\0") if item}
    assert names <= ALLOWED_NAMES and "EXEC_SECRET" in names, names
    assert f"EXEC_SECRET={SECRET}".encode() in environ.stdout.split(b"\0")
    where = running.vg(["exec", session_id, "--", "pwd"])
    assert where.stdout == b"/workspace\n"
    piped = running.vg(["exec", session_id, "--", "wc", "-c"], input=b"12345")
    assert piped.stdout.strip() == b"5"
    assert running.vg(["exec", session_id, "--", "sh", "-c", "exit 7"]).returncode == 7


def test_concurrent_execs_each_run_their_own_command_never_the_sessions(running: Running) -> None:
    """Each exec reads a command file of its own (sessions/enter.py): the session's was once
    rewritten and put back, and an exec whose Podman session was dropped early ran the
    session's own command (here `id -u; echo ready; sleep 120`) while its record named the exec's."""
    session_id = running.session_id()

    def one(n: int) -> tuple[int, bytes]:
        done = running.caller.run(["exec", session_id, "--", "sh", "-c", f"echo exec-{n}"], cwd=running.cwd,
                                  extra_env=running.env, timeout=90)
        return done.returncode, done.stdout

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(24)))
    assert results == [(0, f"exec-{n}\n".encode()) for n in range(24)]
    listed = running.vg(["exec", session_id, "--", "ls", "-A", "/run/vectraguard-run"])
    names = sorted(listed.stdout.decode().split())
    # The session's file, and this exec's own with its status FIFO: every earlier exec's files are gone.
    assert len(names) == 3 and names[0] == "command" and names[1].startswith("exec-"), names
    assert names[2] == names[1] + ".status"
    finished = [e for e in running.events(session_id) if e["kind"] == "exec-finished"]
    assert len(finished) == 25 and {e["exit_status"] for e in finished} == {0}


def test_exec_is_recorded_in_the_session(running: Running) -> None:
    session_id = running.session_id()
    assert running.vg(["exec", session_id, "--", "sh", "-c", f"exit 4 # {SECRET}"]).returncode == 4
    events = running.events(session_id)
    [asked] = [e for e in events if e["kind"] == "exec"]
    [ended] = [e for e in events if e["kind"] == "exec-finished"]
    assert asked["argv"] == ["sh", "-c", "exit 4 # [redacted]"]
    assert asked["decision"] == "allowed" and asked["user"] == "root" and asked["approvals"] == []  # no findings
    assert ended["exec"] == asked["exec"] and ended["exit_status"] == 4
    # One the gate asks about, approved with --yes as a run's would be.
    assert running.vg(["exec", session_id, "--yes", "--", "rm", "-rf", "/home/nothing"]).returncode == 0
    approved = [e for e in running.events(session_id) if e["kind"] == "exec"][-1]
    assert approved["decision"] == "allowed" and approved["argv"] == ["rm", "-rf", "/home/nothing"]
    [entry] = approved["approvals"]
    assert (entry["decision"], entry["by"]) == ("approved", "--yes")
    assert entry["findings"][0]["class"] == "destructive"
    assert outcome(events)["kind"] == "started"  # the session itself goes on


def test_exec_of_a_command_the_gate_refuses_is_refused_and_recorded(running: Running) -> None:
    session_id = running.session_id()
    refused = running.vg(["exec", session_id, "--", "sh", "-c", "touch /tmp/ran; rm -rf /home"])
    assert refused.returncode == 125
    assert b"needs approval" in refused.stderr
    assert running.vg(["exec", session_id, "--", "test", "-e", "/tmp/ran"]).returncode == 1  # nothing of it ran
    [event] = [e for e in running.events(session_id) if e["kind"] == "exec" and e["decision"] == "refused"]
    assert event["argv"] == ["sh", "-c", "touch /tmp/ran; rm -rf /home"]
    assert event["exit_status"] == 125 and "needs approval" in event["reason"]


def test_stop_ends_the_session_and_the_record_says_who(running: Running) -> None:
    session_id = running.session_id()
    stopped = running.vg(["stop", session_id])
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"stopped session {session_id} (interrupted)\n".encode()
    running.proc.communicate(timeout=60)
    assert running.proc.returncode == 128 + signal.SIGTERM
    running.caller.wait_for_removals()
    events = running.events(session_id)
    [asked] = [e for e in events if e["kind"] == "stop-requested"]
    assert asked["by"]["user"] == "root" and asked["by"]["uid"] == 0
    ended = outcome(events)
    assert ended["kind"] == "finished" and ended["status"] == "interrupted"
    assert ended["reason"].startswith("stopped by `vectraguard stop` (user root, uid 0")
    assert running.json(["ps", "--json"]) == []


def test_ended_sessions_are_refused_clearly(running: Running) -> None:
    session_id = running.session_id()
    running.proc.send_signal(signal.SIGTERM)
    running.proc.communicate(timeout=60)
    for args in (["stop", session_id], ["exec", session_id, "--", "true"]):
        done = running.vg(args)
        assert done.returncode == 125
        assert f"session {session_id} is not running (it ended: interrupted)".encode() in done.stderr
    assert running.json(["inspect", session_id, "--json"])["status"] == "interrupted"  # inspect shows ended ones


def test_ids_unique_and_ambiguous_prefixes_and_unknown_ids(running: Running) -> None:
    first = running.session_id()
    assert running.json(["inspect", first[:14], "--json"])["id"] == first  # the first characters
    assert running.json(["inspect", first[-8:], "--json"])["id"] == first  # or the last
    second_proc = _start(running.caller, running.env, running.cwd)
    try:
        assert second_proc.stdout is not None
        second_proc.stdout.readline()
        assert second_proc.stdout.readline() == b"ready\n"
        ids = sorted(row["id"] for row in running.json(["ps", "--json"]))
        assert len(ids) == 2
        shared = next(n for n in range(len(ids[0]), 0, -1) if ids[0][:n] == ids[1][:n])
        ambiguous = running.vg(["exec", ids[0][:shared], "--", "true"])
        assert ambiguous.returncode == 125
        assert f"{ids[0][:shared]!r} names 2 running sessions".encode() in ambiguous.stderr
        assert ids[0].encode() in ambiguous.stderr and ids[1].encode() in ambiguous.stderr
        assert running.vg(["exec", ids[1][:shared + 1], "--", "true"]).returncode == 0
    finally:
        second_proc.send_signal(signal.SIGTERM)
        second_proc.communicate(timeout=60)
    for args in (["stop", "feedface"], ["exec", "feedface", "--", "true"], ["inspect", "feedface"]):
        unknown = running.vg(args)
        assert unknown.returncode == 125
        assert (b"no session 'feedface'" if args[0] == "inspect" else b"no running session 'feedface'") \
            in unknown.stderr


def test_stop_and_exec_match_a_prefix_among_running_sessions_only(running: Running) -> None:
    """Ended sessions share the running one's first characters (ids are time-ordered): `stop` and `exec`
    act on running sessions only, so they are not ambiguous; `inspect` matches all."""
    live = running.session_id()
    ended = []
    for _ in range(2):
        assert running.vg([*P, "--", "true"]).returncode == 0
        ended.append(running.json(["logs", "list", "--json", "--limit", "1"])[0]["id"])
    prefix = live[:next(n for n in range(len(live), 0, -1) if all(i[:n] == live[:n] for i in ended))]
    assert len(prefix) < len(live)
    ambiguous = running.vg(["inspect", prefix])
    assert ambiguous.returncode == 125 and f"{prefix!r} names 3 sessions".encode() in ambiguous.stderr
    done = running.vg(["exec", prefix, "--", "echo", "in-the-running-one"])
    assert done.returncode == 0 and done.stdout == b"in-the-running-one\n", done.stderr
    for args in (["stop", ended[0]], ["exec", ended[0], "--", "true"]):  # a whole id of an ended one: how it ended
        refused = running.vg(args)
        assert refused.returncode == 125
        assert f"session {ended[0]} is not running (it ended: ok)".encode() in refused.stderr, refused.stderr
    stopped = running.vg(["stop", prefix])
    assert stopped.returncode == 0 and stopped.stdout.startswith(f"stopped session {live} ".encode()), stopped


def test_a_session_of_another_user_is_refused(root: Caller, rootless: Caller, rootless_workspace: Path) -> None:
    """Root pointed at another user's audit store sees their sessions, but may
    neither stop them nor run commands in them (nor do their sandboxes show
    in root's Podman)."""
    data = Path(tempfile.mkdtemp(prefix="vg-sessions-rootless-"))
    shutil.chown(data, "vgtest", "vgtest")
    env = {"VECTRAGUARD_DATA_DIR": str(data)}
    argv, full_env = rootless.argv(rootless.vg(["run", "-p", "test-best-effort", "--", "sh", "-c",
                                                "echo ready; sleep 120"]), env)
    proc = subprocess.Popen(argv, cwd=rootless_workspace, env=full_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        theirs = Running(rootless, proc, env, rootless_workspace, "")
        session_id = theirs.session_id()
        # Its own ps: CPU and memory where Podman has stats for a rootless container (cgroups v2), else `-`
        # (v1 and hybrid: no cgroup of its own; README "Running sandboxes").
        from vectraguard.runtime import host

        [row] = theirs.json(["ps", "--json"])
        measured = host.cgroup_mode() == "v2"
        assert (row["cpu_percent"] is not None, row["memory_bytes"] is not None) == (measured, measured), row
        cells = theirs.vg(["ps"]).stdout.decode().splitlines()[2].split()
        assert (cells[4], cells[5]) != ("-", "-") if measured else (cells[4], cells[5]) == ("-", "-"), cells
        as_root = Running(root, proc, env, rootless_workspace, "")
        for args in (["stop", session_id], ["exec", session_id, "--", "true"]):
            refused = as_root.vg(args)
            assert refused.returncode == 125
            assert f"session {session_id} belongs to another user".encode() in refused.stderr
        assert proc.poll() is None  # still running
        assert theirs.vg(["stop", session_id]).returncode == 0  # its own user may
        proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        rootless.wait_for_removals()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.run_options("--set", "risk.decisions.destructive=deny")
def test_exec_is_judged_with_the_sessions_own_options(running: Running) -> None:
    """The run was started with a stricter --set: exec judges as that run would, not as the bare profile."""
    session_id = running.session_id()
    marker = running.cwd / "exec-ran"
    refused = running.vg(["exec", session_id, "--yes", "--", "sh", "-c", "rm -rf /home/nothing; touch /workspace/exec-ran"])
    assert refused.returncode == 125, refused.stderr
    assert b"denies" in refused.stderr
    assert not marker.exists()
    [asked] = [e for e in running.events(session_id) if e["kind"] == "exec"]
    assert asked["decision"] == "refused"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PUBLISHED = _free_port()


@pytest.mark.run_options("--yes", "--publish", f"{PUBLISHED}:3000")
def test_exec_is_not_asked_again_what_the_run_approved_and_its_command_is_still_judged(running: Running) -> None:
    """The run's start approved its published port (--yes): an exec publishes nothing, so `exec ID -- id`
    (no terminal, no --yes) runs; the exec's own command is judged as a run's; and an exec's decision,
    cached, is never a run's: the same run without --yes is still asked about the publish."""
    session_id = running.session_id()
    # Its published port shows in ps (PORTS, as docker ps writes it) and in inspect.
    shown = f"127.0.0.1:{PUBLISHED}->3000/tcp"
    [row] = running.json(["ps", "--json"])
    assert row["ports"] == [shown]
    table = running.vg(["ps"]).stdout.decode().splitlines()
    assert table[0].split()[6] == "PORTS" and table[2].split()[6] == shown, table
    assert running.json(["inspect", session_id, "--json"])["ports"] == [shown]
    assert f"ports:          {shown}" in running.vg(["inspect", session_id]).stdout.decode().splitlines()
    done = running.vg(["exec", session_id, "--", "id", "-u"])
    assert done.returncode == 0 and done.stdout == running.uid.encode() + b"\n", done.stderr
    assert b"network-publish" not in done.stderr
    marker = running.cwd / "exec-ran"
    asked = running.vg(["exec", session_id, "--", "sh", "-c", "rm -rf /home/nothing; touch /workspace/exec-ran"])
    assert asked.returncode == 125 and b"needs approval, and there is no terminal" in asked.stderr, asked.stderr
    assert b"destructive (rm-recursive)" in asked.stderr and b"network-publish" not in asked.stderr
    assert not marker.exists()
    decisions = [e["decision"] for e in running.events(session_id) if e["kind"] == "exec"]
    assert decisions == ["allowed", "refused"]
    assert running.vg(["stop", session_id]).returncode == 0
    running.proc.communicate(timeout=60)
    again = running.vg([*P, "--publish", f"{PUBLISHED}:3000", "--env", f"EXEC_SECRET={SECRET}", "--", "id", "-u"])
    assert again.returncode == 125, again.stderr
    assert b"network (network-publish): publish" in again.stderr and b"no terminal" in again.stderr


def test_exec_output_on_a_terminal_goes_through_the_runs_filter(running: Running) -> None:
    """A title (OSC 0), the clipboard (OSC 52) and cursor-up are dropped on a terminal, as for `run`."""
    session_id = running.session_id()
    script = r"printf 'one\n\033[1A\033]52;c;ZWNobyBoaQ==\007\033]0;owned\007two\n'"
    terminal = Terminal(running.caller, running.cwd, ["exec", session_id, "--", "sh", "-c", script],
                        extra_env=running.env)
    seen = terminal.expect(b"two")
    assert terminal.wait() == 0
    assert b"one" in seen
    for dropped in (b"\x1b]52", b"\x1b]0;", b"\x1b[1A"):
        assert dropped not in seen, seen


def test_an_interrupted_exec_ends_its_command_and_is_recorded(running: Running) -> None:
    session_id = running.session_id()
    argv, env = running.caller.argv(running.caller.vg(["exec", session_id, "--", "sleep", "4711"]), running.env)
    client = subprocess.Popen(argv, cwd=running.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)

    def sleeping() -> bool:
        listed = running.vg(["exec", session_id, "--", "ps", "-o", "args"])
        return b"sleep 4711" in listed.stdout

    try:
        _until(sleeping, "the exec's command to run")
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    assert client.returncode == 130, err
    _until(lambda: not sleeping(), "the exec's command to end")
    finished = [e for e in running.events(session_id) if e["kind"] == "exec-finished"]
    interrupted = [e for e in finished if e["exit_status_from"] == "interrupted"]
    assert [e["exit_status"] for e in interrupted] == [130]


def test_stop_and_exec_refuse_a_store_or_an_owner_that_is_not_the_callers(running: Running, tmp_path: Path) -> None:
    """A store another user wrote can name any of the caller's processes as a session's owner: `stop`
    would signal it. The store must be the caller's, and the owner a `vectraguard`."""
    session_id = running.session_id()
    store = Path(running.env["VECTRAGUARD_DATA_DIR"]) / "audit.db"
    innocent = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        identity = owner.process_identity(innocent.pid)
        with sqlite3.connect(store) as db:
            db.execute("UPDATE sessions SET owner = ? WHERE id = ?", (identity, session_id))
            body = json.loads(db.execute("SELECT body FROM events WHERE session_id = ? AND kind = 'started'",
                                         (session_id,)).fetchone()[0])
            db.execute("UPDATE events SET body = ? WHERE session_id = ? AND kind = 'started'",
                       (json.dumps({**body, "owner": identity}), session_id))
        refused = running.vg(["stop", session_id])
        assert refused.returncode == 125 and b"is not a vectraguard" in refused.stderr, refused.stderr
        os.chown(store, 1001 if os.getuid() == 0 else 0, -1)
        for args in (["stop", session_id], ["exec", session_id, "--", "true"]):
            other = running.vg(args)
            assert other.returncode == 125 and b"belongs to another user" in other.stderr, other.stderr
        assert innocent.poll() is None  # never signalled
    finally:
        os.chown(store, os.getuid(), -1)
        innocent.kill()
        innocent.wait()


def _until(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"waited {within} s for {what}"


def test_an_exec_whose_client_is_killed_leaves_nothing_once_the_session_ends(running: Running) -> None:
    """SIGKILL of `vectraguard exec` leaves its command file and FIFO: the session's end removes them, and its directory."""
    session_id = running.session_id()
    [container] = subprocess.run(["podman", "ps", "-q", "--no-trunc", "--filter", f"label={LABEL_SESSION}={session_id}"],
                                 capture_output=True, text=True, check=True).stdout.split()
    mounts = json.loads(subprocess.run(["podman", "inspect", container], capture_output=True, text=True,
                                       check=True).stdout)[0]["Mounts"]
    [run_dir] = [Path(m["Source"]) for m in mounts if m["Destination"] == "/run/vectraguard-run"]
    argv, env = running.caller.argv(running.caller.vg(["exec", session_id, "--", "sleep", "4712"]), running.env)
    client = subprocess.Popen(argv, cwd=running.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    _until(lambda: any(path.name.startswith("exec-") for path in run_dir.iterdir()), "the exec's files")
    client.kill()
    client.wait()
    assert running.vg(["stop", session_id]).returncode == 0
    assert not run_dir.exists(), sorted(path.name for path in run_dir.iterdir())


def test_the_owner_of_a_session_is_recognised_as_vectraguard_however_it_was_started(tmp_path: Path) -> None:
    """stop and exec signal or enter a session only when its owner is a `vectraguard`
    (sessions/running.py): the installed script with the run's own options after it, or
    `python -m vectraguard`, with or without interpreter options; nothing else."""
    script = tmp_path / "vectraguard"
    script.write_text("import time\ntime.sleep(120)\n")
    started = {
        True: [[sys.executable, str(script), "run", "-p", "untrusted", "--", "sh", "-c", "x"],
               [sys.executable, str(script), "-q", "run", "--", "true"],
               [sys.executable, "-X", "importtime", str(script), "run", "--", "true"]],
        False: [[sys.executable, "-c", "import time; time.sleep(120)", "vectraguard"],
                ["sleep", "120"]],
    }
    processes = [(expected, subprocess.Popen(argv, stderr=subprocess.DEVNULL))
                 for expected, argvs in started.items() for argv in argvs]
    try:
        for expected, process in processes:
            # Its own command line, not its parent's (before exec the child's is pytest's).
            _until(lambda p=process: Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")[:len(p.args)]
                   == [os.fsencode(word) for word in p.args], "the process")
            assert running_module._is_vectraguard(process.pid) is expected, process.args
    finally:
        for _, process in processes:
            process.kill()
            process.wait()
