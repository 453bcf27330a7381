"""The pool of initialised sandboxes (vectraguard/pool/), on real Podman.

A pooled run must be the run it would have been cold: the same posture
from inside, its own command, environment and directory, its own exit
status, and a record that says it was pooled. A pooled container goes to
one run only, and a pool made for one kind of sandbox is never used for
another (profile, image, workspace changed).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import TEST_IMAGE, Caller, outcome

P = ["run", "-p", "test-untrusted"]
POOLED = [*P, "--set", "pool=2"]
LABEL_POOL = "io.vectraguard.pool"

# What a sandbox looks like from inside: identity, privileges, seccomp, mounts, network, limits, environment.
PROBE = r"""
id
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status
awk '{print $5, $6}' /proc/self/mountinfo | sort
cat /proc/net/dev | awk 'NR>2 {print $1}'
ulimit -n; ulimit -u
cat /proc/1/cmdline | tr '\0' ' '; echo
env | sort
pwd
touch /probe-root 2>&1 || true
echo "argv: $0 $*"
"""


@pytest.fixture
def pool_home(root: Caller, workspace: Path) -> Iterator[dict[str, str]]:
    """A private audit store; every pooled sandbox is removed afterwards (`pool stop`)."""
    data = Path(subprocess.run(["mktemp", "-d", "/tmp/vg-pool-data-XXXXXX"], capture_output=True, text=True,
                               check=True).stdout.strip())
    env = {"VECTRAGUARD_DATA_DIR": str(data)}
    yield env
    root.run(["pool", "stop"], cwd=workspace, extra_env=env)
    shutil.rmtree(data, ignore_errors=True)


def _pooled_ids(caller: Caller) -> set[str]:
    argv, env = caller.argv(["podman", "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_POOL}", "--format",
                             "{{.ID}}"])
    return set(subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60).stdout.split())


def _finished(caller: Caller, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    return outcome(caller.last_session(cwd, env)["events"])


def _warm(caller: Caller, cwd: Path, env: dict[str, str], args: list[str]) -> None:
    """One run that fills the pool (it runs cold itself, or pooled if one was ready)."""
    done = caller.run([*args, "--", "true"], cwd=cwd, extra_env=env)
    assert done.returncode == 0, done.stderr


def test_a_pooled_run_is_the_run_it_would_have_been_cold(root: Caller, workspace: Path,
                                                          pool_home: dict[str, str]) -> None:
    argv = ["sh", "-c", PROBE, "probe", "one arg", "", "t\u00e9"]
    cold = root.run([*P, "--env", "PROBE_VALUE=x y", "--", *argv], cwd=workspace, extra_env=pool_home)
    assert cold.returncode == 0, cold.stderr
    assert _finished(root, workspace, pool_home)["container"]["pooled"] is False  # type: ignore[index]
    _warm(root, workspace, pool_home, POOLED)
    pooled = root.run([*POOLED, "--env", "PROBE_VALUE=x y", "--", *argv], cwd=workspace, extra_env=pool_home)
    assert pooled.returncode == 0, pooled.stderr
    assert _finished(root, workspace, pool_home)["container"]["pooled"] is True  # type: ignore[index]
    # HOSTNAME and the like are the same; only what names this very container may differ: nothing here does.
    assert pooled.stdout.decode() == cold.stdout.decode()
    out = pooled.stdout.decode()
    assert "CapEff:\t0000000000000000" in out and "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out
    assert "PROBE_VALUE=x y" in out and "argv: probe one arg  t\u00e9" in out
    assert "Read-only file system" in out


@pytest.mark.parametrize(("command", "status"), [(["true"], 0), (["sh", "-c", "exit 3"], 3),
                                                 (["sh", "-c", "kill -KILL $$"], 137), (["no-such-command"], 127)])
def test_a_pooled_run_returns_its_own_status(root: Caller, workspace: Path, pool_home: dict[str, str],
                                             command: list[str], status: int) -> None:
    _warm(root, workspace, pool_home, POOLED)
    done = root.run([*POOLED, "--", *command], cwd=workspace, extra_env=pool_home)
    assert done.returncode == status, done.stderr
    finished = _finished(root, workspace, pool_home)
    assert finished["exit_status"] == status and finished["container"]["pooled"] is True  # type: ignore[index]


def test_a_pooled_run_times_out_and_reads_stdin_like_a_cold_one(root: Caller, workspace: Path,
                                                                  pool_home: dict[str, str]) -> None:
    _warm(root, workspace, pool_home, POOLED)
    done = root.run([*POOLED, "--", "sh", "-c", "cat; exit 4"], cwd=workspace, input=b"from stdin\n",
                    extra_env=pool_home)
    assert (done.returncode, done.stdout) == (4, b"from stdin\n")
    timed = root.run([*POOLED, "--timeout", "2s", "--", "sleep", "60"], cwd=workspace, extra_env=pool_home)
    assert timed.returncode == 124  # --timeout changed the spec (Podman's backstop): a cold run, same answer


def test_each_pooled_container_goes_to_one_run(root: Caller, workspace: Path, pool_home: dict[str, str]) -> None:
    args = [*P, "--set", "pool=4"]
    _warm(root, workspace, pool_home, args)
    argv, env = root.argv(root.vg([*args, "--", "true"]), pool_home)

    def one(_: int) -> None:
        subprocess.run(argv, cwd=workspace, env=env, capture_output=True, timeout=300, check=True,
                       start_new_session=True)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, range(12)))
    root.wait_for_removals()
    listed = json.loads(root.run(["logs", "list", "--json", "--limit", "20"], cwd=workspace,
                                 extra_env=pool_home).stdout)
    containers = []
    for row in listed:
        shown = json.loads(root.run(["logs", "show", row["id"], "--json"], cwd=workspace,
                                    extra_env=pool_home).stdout)
        containers.append(outcome(shown["events"])["container"])
    assert len(containers) == 13
    assert any(c["pooled"] for c in containers)
    ids = [c["id"] for c in containers]
    assert len(set(ids)) == len(ids)  # never one container for two runs


def _claim_all(out: Any) -> None:
    from vectraguard.pool import store

    got = []
    while (claimed := store.claim("slot", "key", f"{os.getpid()}:1")) is not None:
        got.append(claimed[0].cid)
    out.put(got)


def test_claims_are_exclusive_under_contention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight processes race to empty one index of 200 entries: each entry is taken exactly once."""
    from vectraguard.pool import store

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setattr(store, "pool_dir", lambda: runtime / "pool")  # inherited by the forked workers
    for i in range(200):
        store.add(store.Entry(cid=f"c{i:03d}", profile="p", cwd="/", slot="slot", key="key", image_id="i",
                              run_dir="/nonexistent", hosts_file="/nonexistent", created=0.0, idle=60.0))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_claim_all, args=(queue,)) for _ in range(8)]
    for worker in workers:
        worker.start()
    taken = [cid for _ in workers for cid in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(taken) == [f"c{i:03d}" for i in range(200)]
    assert list(store.ready()) == []


def test_a_fill_makes_up_for_claims_made_while_it_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-to-back runs claim while a refill is under way, and a second
    refill finds the first holding the lock: the pool still ends full.
    (Podman is not needed for the count; `make` stands in for it.)"""
    from vectraguard.pool import fill, store
    from vectraguard.pool.plan import Plan

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setattr(store, "pool_dir", lambda: runtime / "pool")
    made: list[str] = []

    def make(client: Any, spec: Any, wanted: Plan) -> store.Entry:
        entry = store.Entry(cid=f"c{len(made)}", profile="p", cwd="/", slot=wanted.slot, key=wanted.key,
                            image_id="i", run_dir="/nonexistent", hosts_file="/nonexistent",
                            created=__import__("time").time(), idle=60.0)
        store.add(entry)
        made.append(entry.cid)
        if len(made) == 1:  # a run claims the container just made, while this fill still works
            assert store.claim(wanted.slot, wanted.key, f"{os.getpid()}:1") is not None
        return entry

    monkeypatch.setattr(fill, "make", make)
    wanted = Plan(profile="p", cwd="/", slot="slot", key="key", size=2, idle=60.0)
    assert fill.fill(None, None, wanted) == 3  # type: ignore[arg-type]
    assert sorted(found.cid for found, _ in store.ready("slot")) == ["c1", "c2"]


def test_a_changed_profile_discards_the_pool(root: Caller, workspace: Path, pool_home: dict[str, str]) -> None:
    _warm(root, workspace, pool_home, POOLED)
    old = _pooled_ids(root)
    assert old, "the first run filled the pool"
    changed = [*POOLED, "--set", "limits.pids=77"]
    done = root.run([*changed, "--", "sh", "-c", "ulimit -u; cat /sys/fs/cgroup/pids.max 2>/dev/null; true"],
                    cwd=workspace, extra_env=pool_home)
    assert done.returncode == 0, done.stderr
    assert _finished(root, workspace, pool_home)["container"]["pooled"] is False  # type: ignore[index]
    # Its refill made the pool of the new kind and discarded the old one's.
    assert not (old & _pooled_ids(root))


def test_a_rebuilt_image_is_not_served_from_the_pool(root: Caller, workspace: Path,
                                                      pool_home: dict[str, str]) -> None:
    """The pool's containers were made from the image the name stood for then; a new one under that name wins."""
    name = "localhost/vectraguard-pool-test:latest"
    podman = root.podman()
    subprocess.run([*podman, "tag", TEST_IMAGE, name], check=True, capture_output=True)
    try:
        args = [*POOLED, "--image", name]
        _warm(root, workspace, pool_home, args)
        rebuilt = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
        (rebuilt / "Containerfile").write_text(f"FROM {TEST_IMAGE}\nLABEL rebuilt=yes\n")
        subprocess.run([*podman, "build", "-q", "-t", name, str(rebuilt)], check=True, capture_output=True,
                       timeout=300)
        shutil.rmtree(rebuilt, ignore_errors=True)
        done = root.run([*args, "--", "true"], cwd=workspace, extra_env=pool_home)
        assert done.returncode == 0, done.stderr
        finished = _finished(root, workspace, pool_home)
        assert finished["container"]["pooled"] is False  # type: ignore[index]
        new_id = subprocess.run([*podman, "image", "inspect", "--format", "{{.Id}}", name], capture_output=True,
                                text=True, check=True).stdout.strip()
        assert finished["image_id"] == new_id
    finally:
        root.run(["pool", "stop"], cwd=workspace, extra_env=pool_home)
        subprocess.run([*podman, "rmi", "-f", name], capture_output=True, check=False)


def test_a_replaced_workspace_is_not_served_from_the_pool(root: Caller, tmp_path: Path,
                                                           pool_home: dict[str, str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    tmp_path.chmod(0o755)
    project.chmod(0o755)
    (project / "which").write_text("first\n")
    (project / "which").chmod(0o644)
    _warm(root, project, pool_home, POOLED)
    project.rename(tmp_path / "old")
    project.mkdir()
    project.chmod(0o755)
    (project / "which").write_text("second\n")
    (project / "which").chmod(0o644)
    done = root.run([*POOLED, "--", "cat", "which"], cwd=project, extra_env=pool_home)
    assert (done.returncode, done.stdout) == (0, b"second\n")
    assert _finished(root, project, pool_home)["container"]["pooled"] is False  # type: ignore[index]
    root.run(["pool", "stop"], cwd=project, extra_env=pool_home)


def test_pool_start_list_and_stop(root: Caller, workspace: Path, pool_home: dict[str, str]) -> None:
    started = root.run(["pool", "start", "-p", "test-untrusted", "-n", "2"], cwd=workspace, extra_env=pool_home)
    assert started.returncode == 0, started.stderr
    assert b"2 ready, 2 kept" in started.stdout
    listed = json.loads(root.run(["pool", "list", "--json"], cwd=workspace, extra_env=pool_home).stdout)
    mine = [row for row in listed if row["directory"] == str(workspace) and row["profile"] == "test-untrusted"]
    assert len(mine) == 2
    done = root.run([*P, "--", "true"], cwd=workspace, extra_env=pool_home)  # the profile itself asks for none
    assert done.returncode == 0
    assert _finished(root, workspace, pool_home)["container"]["pooled"] is True  # type: ignore[index]
    stopped = root.run(["pool", "stop", "-p", "test-untrusted"], cwd=workspace, extra_env=pool_home)
    assert stopped.returncode == 0
    left = json.loads(root.run(["pool", "list", "--json"], cwd=workspace, extra_env=pool_home).stdout)
    assert [row for row in left if row["profile"] == "test-untrusted" and row["directory"] == str(workspace)] == []
    root.run([*P, "--", "true"], cwd=workspace, extra_env=pool_home)
    assert _finished(root, workspace, pool_home)["container"]["pooled"] is False  # type: ignore[index]


def test_a_pooled_rw_run_writes_the_real_directory(root: Caller, tmp_path: Path,
                                                   pool_home: dict[str, str]) -> None:
    """`rw` is pooled (the agent-shell profile's case): its writes land, its protected-path report still works."""
    project = tmp_path / "rw"
    project.mkdir()
    tmp_path.chmod(0o755)
    project.chmod(0o777)  # rootful: the sandbox's mapped user must be able to write it
    args = [*POOLED, "--workspace", "rw", "--yes"]
    _warm(root, project, pool_home, args)
    done = root.run([*args, "--", "sh", "-c", "echo made > made.txt; echo hook > .envrc"], cwd=project,
                    extra_env=pool_home)
    assert done.returncode == 0, done.stderr
    finished = _finished(root, project, pool_home)
    assert finished["container"]["pooled"] is True  # type: ignore[index]
    assert (project / "made.txt").read_text() == "made\n"
    assert finished["workspace"]["protected_changed"] == [".envrc"]  # type: ignore[index]
    root.run(["pool", "stop"], cwd=project, extra_env=pool_home)


def test_no_pool_for_a_terminal_or_an_overlay_workspace(root: Caller, workspace: Path,
                                                        pool_home: dict[str, str]) -> None:
    refused = root.run(["pool", "start", "-p", "test-untrusted", "--workspace", "overlay"], cwd=workspace,
                       extra_env=pool_home)
    assert refused.returncode != 0
    assert b"cannot have a pool here: an overlay workspace is mounted for one session" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_a_killed_pooled_run_is_reaped_and_recorded(root: Caller, workspace: Path,
                                                    pool_home: dict[str, str]) -> None:
    _warm(root, workspace, pool_home, POOLED)
    root.killed_run(POOLED, cwd=workspace, extra_env=pool_home)
    session = json.loads(root.run(["logs", "list", "--json", "--limit", "1"], cwd=workspace,
                                  extra_env=pool_home).stdout)[0]["id"]
    reaped = root.run(["sandbox", "reap", "--wait"], cwd=workspace, extra_env=pool_home)
    assert reaped.returncode == 0, reaped.stderr
    shown = json.loads(root.run(["logs", "show", session, "--json"], cwd=workspace, extra_env=pool_home).stdout)
    [removed] = [e for e in shown["events"] if e["kind"] == "removed"]
    assert removed["by"] == "reaper"
    assert removed["container_id"] not in _pooled_ids(root)
    assert not (Path("/run/vectraguard/entries") / session).exists()


def test_a_killed_runs_files_go_with_its_sandbox(root: Caller, workspace: Path, pool_home: dict[str, str]) -> None:
    """The command file holds the sandbox's environment: it must not outlive the run."""
    root.killed_run([*P, "--env", "TOKEN=do-not-keep"], cwd=workspace, extra_env=pool_home)
    session = json.loads(root.run(["logs", "list", "--json", "--limit", "1"], cwd=workspace,
                                  extra_env=pool_home).stdout)[0]["id"]
    assert (Path("/run/vectraguard/entries") / session / "command").exists()
    assert root.run(["sandbox", "reap", "--wait"], cwd=workspace, extra_env=pool_home).returncode == 0
    assert not (Path("/run/vectraguard/entries") / session).exists()
    assert not (Path("/run/vectraguard/sessions") / f"{session}.hosts").exists()


def test_pool_stop_is_not_undone_by_a_run_in_flight(root: Caller, workspace: Path,
                                                     pool_home: dict[str, str]) -> None:
    assert root.run(["pool", "start", "-p", "test-untrusted", "-n", "2"], cwd=workspace,
                    extra_env=pool_home).returncode == 0
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo ready; sleep 2"]), pool_home)
    proc = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert root.run(["pool", "stop", "-p", "test-untrusted"], cwd=workspace, extra_env=pool_home).returncode == 0
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    root.wait_for_removals()
    listed = json.loads(root.run(["pool", "list", "--json"], cwd=workspace, extra_env=pool_home).stdout)
    assert [row for row in listed if row["profile"] == "test-untrusted" and row["directory"] == str(workspace)] == []


def test_pool_stop_leaves_nothing_of_a_killed_pool_start(root: Caller, workspace: Path,
                                                         pool_home: dict[str, str]) -> None:
    before = set(root.pooled())
    argv, env = root.argv(root.vg(["pool", "start", "-p", "test-untrusted", "-n", "8"]), pool_home)
    proc = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    while not set(root.pooled()) - before and proc.poll() is None:
        pass  # until it has made a container (or ended)
    proc.kill()
    proc.wait(timeout=30)
    assert root.run(["pool", "stop"], cwd=workspace, extra_env=pool_home).returncode == 0
    assert set(root.pooled()) - before == set()


def test_a_reaper_alongside_fills_and_pooled_runs_removes_nothing_of_theirs(root: Caller, workspace: Path,
                                                                          pool_home: dict[str, str]) -> None:
    """Every run's remover and `sandbox reap` prune the pool; one must never take a container another
    process is making, has just published, or runs a command in (an outside attack saw fills come to
    nothing and pooled runs killed with 137 while other runs' reapers ran)."""
    stop = threading.Event()
    reaps: list[int] = []

    def reap_until_stopped() -> None:
        while not stop.is_set():
            reaps.append(root.run(["sandbox", "reap"], cwd=workspace, extra_env=pool_home).returncode)

    reaper = threading.Thread(target=reap_until_stopped)
    reaper.start()
    try:
        started = root.run(["pool", "start", "-p", "test-untrusted", "-n", "4"], cwd=workspace, extra_env=pool_home)
        assert started.returncode == 0, started.stderr
        assert b"4 ready" in started.stdout, started.stdout
        for status in (3, 4, 5, 6):  # the four made above, each claimed while the reaper works
            done = root.run([*P, "--", "sh", "-c", f"sleep 0.3; exit {status}"], cwd=workspace,
                            extra_env=pool_home)
            assert done.returncode == status, done.stderr
            assert _finished(root, workspace, pool_home)["container"]["pooled"] is True  # type: ignore[index]
    finally:
        stop.set()
        reaper.join(timeout=120)
    assert reaps and set(reaps) == {0}
