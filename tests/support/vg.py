"""Running the real `vectraguard` command, as root or as the rootless test user."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOTLESS_USER = "vgtest"
TEST_IMAGE = "localhost/vectraguard-test:latest"
# The shipped default image, by the tag `image build` keeps (a rebuild replaces the ID).
DEFAULT_IMAGE_REF = "localhost/vectraguard/default:bookworm"
LABEL_SESSION = "io.vectraguard.session"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Caller:
    """Who runs vectraguard: root, or the unprivileged test user through runuser."""

    user: str | None  # None: this process (root)
    config_home: Path

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        home = os.path.expanduser(f"~{self.user}") if self.user else "/root"
        env = {"PATH": SYSTEM_PATH, "HOME": home, "LANG": "C.UTF-8", "XDG_CONFIG_HOME": str(self.config_home)}
        if self.user:
            env.update(USER=self.user, LOGNAME=self.user)
        if os.environ.get("PYTHONPATH"):
            # The code under test: a work tree run with PYTHONPATH=TREE, not the editable install's tree.
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        env.update(extra or {})
        return env

    def argv(self, program: Sequence[str], extra_env: dict[str, str] | None = None,
             netns: str | None = None) -> tuple[list[str], dict[str, str]]:
        """The argv and environment to run `program` as this caller; inside
        the named network namespace `netns` (tests/support/netns.py) if given."""
        env = self.environment(extra_env)
        enter = ["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else []
        if self.user is None:
            return [*enter, *program], env
        as_user = ["runuser", "-u", self.user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items())]
        return [*enter, *as_user, *program], {"PATH": SYSTEM_PATH}

    def vg(self, args: Sequence[str]) -> list[str]:
        # -P: the working directory (the project) is not on the module path, as
        # for the installed `vectraguard` script (its own directory is);
        # tests/test_host_helpers.py plants a `vectraguard/` package there.
        return [sys.executable, "-P", "-m", "vectraguard", *args]

    def run(self, args: Sequence[str], *, cwd: Path, input: bytes = b"", timeout: float = 120,
            extra_env: dict[str, str] | None = None, netns: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """Without a controlling terminal (a session of its own), whether or not
        the tests run from one: nothing can be asked, as in CI. With `netns`,
        inside that network namespace, on a Podman service started outside it
        (service_env)."""
        if netns:
            extra_env = {**self.service_env(), **(extra_env or {})}
        argv, env = self.argv(self.vg(args), extra_env, netns)
        done = subprocess.run(argv, cwd=cwd, env=env, input=input, capture_output=True,
                              timeout=timeout, check=False, start_new_session=True)
        self.wait_for_removals()
        return done

    def wait_for_removals(self) -> None:
        """Until the detached removals of this caller's runs have ended (each
        holds a lock while it works: runtime/removal.py), so that what a test
        sees next — containers, audit events — no longer changes under it."""
        from vectraguard.runtime.removal import wait_for_pending

        if self.user is None:
            directory = Path("/run/vectraguard")
        else:
            uid = pwd.getpwnam(self.user).pw_uid
            directory = Path(f"/tmp/vectraguard-{uid}")  # runtime_dir() without XDG_RUNTIME_DIR, as environment() gives
        wait_for_pending(directory / "removals")

    def last_session(self, cwd: Path, extra_env: dict[str, str] | None = None,
                     netns: str | None = None) -> dict[str, Any]:
        """`logs show --json` of the newest session."""
        listed = self.run(["logs", "list", "--json", "--limit", "1"], cwd=cwd, extra_env=extra_env, netns=netns)
        rows = json.loads(listed.stdout)
        shown = self.run(["logs", "show", rows[0]["id"], "--json"], cwd=cwd, extra_env=extra_env, netns=netns)
        return json.loads(shown.stdout)  # type: ignore[no-any-return]

    def service_env(self) -> dict[str, str]:
        """CONTAINER_HOST naming the Podman service this caller's runs use,
        started here, in the host's namespace, if it was not running.

        A run inside a test namespace must never start the private service
        itself: the service outlives the run, would sit in that namespace
        (and keep it alive), and every later run on this host, the other
        tests' included, would reuse it. Pinned by CONTAINER_HOST, a run
        whose service went away fails instead of starting one."""
        script = ("from vectraguard.runtime import host, service; "
                  "print(service.connect(host.detect().oci_runtime).socket_path)")
        argv, env = self.argv([sys.executable, "-c", script])
        done = subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True, check=True, timeout=120)
        return {"CONTAINER_HOST": f"unix://{done.stdout.strip()}"}

    def popen(self, args: Sequence[str], *, cwd: Path, netns: str | None = None) -> subprocess.Popen[bytes]:
        argv, env = self.argv(self.vg(args), self.service_env() if netns else None, netns)
        # A session of its own, like a terminal job: signals go where the test sends them.
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def killed_run(self, args: Sequence[str], *, cwd: Path, extra_env: dict[str, str] | None = None) -> int:
        """`vectraguard ARGS -- sh -c 'echo ready; sleep 300'`, killed with SIGKILL once its
        command has started (nothing of it can clean up); its pid."""
        argv, env = self.argv(self.vg([*args, "--", "sh", "-c", "echo ready; sleep 300"]), extra_env)
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.kill()
        proc.communicate(timeout=30)
        return proc.pid

    def podman(self) -> list[str]:
        argv, _ = self.argv(["podman"])
        return argv

    def pooled(self) -> list[str]:
        """IDs of every pooled container (vectraguard/pool/) of this caller's that still exists."""
        self.wait_for_removals()
        argv, env = self.argv(["podman", "ps", "-a", "--filter", "label=io.vectraguard.pool", "--format", "{{.ID}}"])
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.split()

    def sandboxes(self) -> list[str]:
        """IDs of every container Vectra Guard created that still exists (once the removals under way have ended)."""
        self.wait_for_removals()
        argv, env = self.argv(["podman", "ps", "-a", "--filter", f"label={LABEL_SESSION}", "--format", "{{.ID}}"])
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.split()


STATUS_KINDS = ("started", "finished", "refused", "incomplete", "checked")


def outcome(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The event that set the session's status last (`finished`, `refused`...),
    not the notes that may follow it, such as `removed`."""
    return [event for event in events if event.get("kind") in STATUS_KINDS][-1]


def installed_profiles_dir() -> str:
    """Where the vectraguard the tests run keeps its shipped profiles, asked of
    that installation (from /: not this checkout's package, which CI installs
    elsewhere, not in place)."""
    done = subprocess.run([sys.executable, "-c", "from vectraguard import resources; print(resources.profiles_dir())"],
                          cwd="/", capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()
