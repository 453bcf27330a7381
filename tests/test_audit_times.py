"""Time arguments of `logs list --since/--until` and `logs prune --before`, through the real CLI.

The store is seeded with the store API (sessions at chosen start times, in
time order, as runs append them); the CLI runs as a subprocess in a zone that
is not UTC (Asia/Kolkata, +05:30 all year), so "local time" and "UTC" differ
by a non-whole number of hours. Sessions within two minutes of the time a
form names are left out of the comparison: the CLI reads `now` a little
later than the test does.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vectraguard.audit.store import open_store

ZONE = "Asia/Kolkata"
LOCAL = ZoneInfo(ZONE)
MARGIN = timedelta(minutes=2)


def _local_midnight(days: int) -> datetime:
    day = datetime.now(LOCAL).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL).astimezone(UTC)


def seeds(now: datetime) -> dict[str, datetime]:
    """The seeded sessions: name -> start time (UTC). Around the starts of
    today and yesterday (local), and the relative ages the forms name."""
    return {
        "ten-days": now - timedelta(days=10),
        "five-days": now - timedelta(days=5),
        "before-yesterday": _local_midnight(-1) - timedelta(minutes=1),
        "after-yesterday": _local_midnight(-1) + timedelta(minutes=1),
        "forty-hours": now - timedelta(hours=40),
        "thirty-hours": now - timedelta(hours=30),
        "before-today": _local_midnight(0) - timedelta(minutes=1),
        "after-today": _local_midnight(0) + timedelta(minutes=1),
        "hundred-minutes": now - timedelta(minutes=100),
        "thirty-minutes": now - timedelta(minutes=30),
    }


def _iso_local(moment: datetime) -> str:
    return moment.astimezone(LOCAL).replace(tzinfo=None).isoformat(timespec="seconds")


def form(label: str, now: datetime) -> tuple[str, datetime]:
    """The text of the form LABEL names, and the time (UTC) it must mean."""
    pivot = (now - timedelta(hours=20)).replace(microsecond=0)  # an absolute time for the ISO forms
    yesterday = (datetime.now(LOCAL).date() - timedelta(days=1)).isoformat()
    return {
        "now": ("now", now),
        "today": ("today", _local_midnight(0)),
        "yesterday": ("yesterday", _local_midnight(-1)),
        "YESTERDAY": ("YESTERDAY", _local_midnight(-1)),
        "date alone": (yesterday, _local_midnight(-1)),  # the start of that day, local
        "ISO with offset": (pivot.astimezone(timezone(timedelta(hours=1))).isoformat(), pivot),
        "ISO with Z": (pivot.strftime("%Y-%m-%dT%H:%M:%SZ"), pivot),
        "ISO without zone": (_iso_local(pivot), pivot),  # local time
        "ISO with a space": (_iso_local(pivot).replace("T", " "), pivot),
        "@seconds": (f"@{int(pivot.timestamp())}", pivot),
        "90m": ("90m", now - timedelta(minutes=90)),
        "36h": ("36h", now - timedelta(hours=36)),
        "7d": ("7d", now - timedelta(days=7)),
        "2 hours ago": ("2 hours ago", now - timedelta(hours=2)),
        "3 days ago": ("3 days ago", now - timedelta(days=3)),
    }[label]


FORMS = ["now", "today", "yesterday", "YESTERDAY", "date alone", "ISO with offset", "ISO with Z",
         "ISO without zone", "ISO with a space", "@seconds", "90m", "36h", "7d", "2 hours ago", "3 days ago"]
BAD = ["garbage", "", "5", "2026", "March", "2026-13-01", "yesterday 10:00", "99999 years ago", "1x",
       "0001-01-01T00:00:00+01:00", "\x1b[2Jtoday",
       # dateparser skips what it does not know: these would be 5 hours and a day.
       "1,5h", "1d\udcff", "\uff11d"]
OLD = {"ten-days", "five-days"}  # what `--before 4d` drops


@dataclass
class Store:
    """A private data dir with `seeds(now)` recorded, and the CLI run against it."""

    data_dir: Path
    now: datetime
    seeds: dict[str, datetime]
    ids: dict[str, str]

    def vg(self, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "VECTRAGUARD_DATA_DIR": str(self.data_dir), "TZ": ZONE}
        return subprocess.run([sys.executable, "-m", "vectraguard", *args], env=env, stdin=stdin,
                              capture_output=True, text=True, timeout=60, check=False)

    def listed(self, *filters: str) -> set[str]:
        result = self.vg("logs", "list", "--json", "--limit", "1000", *filters)
        assert result.returncode == 0, result.stderr
        names = {session_id: name for name, session_id in self.ids.items()}
        return {names[row["id"]] for row in json.loads(result.stdout)}

    def far_from(self, boundary: datetime) -> set[str]:
        """The seeds the CLI's slightly later `now` cannot put on the other side of `boundary`."""
        return {name for name, moment in self.seeds.items() if abs(moment - boundary) > MARGIN}

    def started_from(self, boundary: datetime) -> set[str]:
        return {name for name, moment in self.seeds.items() if moment >= boundary}


@pytest.fixture
def store() -> Iterator[Store]:
    data_dir = Path(tempfile.mkdtemp(prefix="vg-times-"))
    now = datetime.now(UTC)
    try:
        yield Store(data_dir, now, seeds(now), seed(data_dir, seeds(now)))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def seed(data_dir: Path, moments: dict[str, datetime]) -> dict[str, str]:
    """Record one refused session per moment, oldest first (as runs append them); name -> id."""
    audit = open_store(data_dir / "audit.db")
    ids = {}
    try:
        for name, moment in sorted(moments.items(), key=lambda item: item[1]):
            at = _store_form(moment)
            session_id = f"{int(moment.timestamp() * 1000):012x}{os.urandom(5).hex()}"
            body = {"version": 1, "session": session_id, "status": "refused", "at": at, "argv": [name],
                    "reason": "seeded", "exit_status": 125}
            audit.append(session_id, "refused", body, {"id": session_id, "started_at": at, "ended_at": at,
                                                       "command": name, "status": "refused", "exit_status": 125})
            ids[name] = session_id
    finally:
        audit.close()
    return ids


def _store_form(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("label", FORMS)
def test_since_and_until_read_every_form_as_a_time(store: Store, label: str) -> None:
    text, boundary = form(label, store.now)
    far = store.far_from(boundary)
    assert store.listed("--since", text) & far == store.started_from(boundary) & far
    assert store.listed("--until", text) & far == far - store.started_from(boundary)
    assert store.listed("--since", text, "--until", text) == set()


@pytest.mark.parametrize("label", FORMS)
def test_prune_before_reads_every_form_as_a_time(store: Store, label: str) -> None:
    text, boundary = form(label, store.now)
    far = store.far_from(boundary)
    result = store.vg("logs", "prune", "--before", text, "--yes")
    assert result.returncode == 0, result.stderr
    assert store.listed() & far == store.started_from(boundary) & far
    assert store.vg("logs", "verify").returncode == 0


def test_prune_before_yesterday_removes_only_what_is_older(store: Store) -> None:
    """The issue's example: the old string compare took `yesterday` as later than every time, and deleted all."""
    result = store.vg("logs", "prune", "--before", "yesterday", "--yes")
    assert result.returncode == 0, result.stderr
    assert store.listed() == store.started_from(_local_midnight(-1))
    assert {"before-yesterday", "after-yesterday", "thirty-minutes"} & store.listed() == {"after-yesterday",
                                                                                           "thirty-minutes"}
    assert store.vg("logs", "verify").returncode == 0


@pytest.mark.parametrize("option", [["logs", "list", "--since"], ["logs", "list", "--until"],
                                    ["logs", "prune", "--yes", "--before"]])
@pytest.mark.parametrize("value", BAD)
def test_a_value_that_is_not_a_time_is_refused(store: Store, option: list[str], value: str) -> None:
    result = store.vg(*option, value)
    assert result.returncode == 125
    [line] = result.stderr.splitlines()
    assert line.startswith(f"vectraguard: {option[-1]}: {value!r} is not a time; give ISO 8601 (")
    assert "\x1b" not in line
    assert store.listed() == set(store.seeds)


@pytest.mark.parametrize("future", ["tomorrow", "in 2 days", "1h-from-now"])
def test_prune_refuses_a_time_in_the_future(store: Store, future: str) -> None:
    if future == "1h-from-now":
        future = (store.now + timedelta(hours=1)).isoformat()
    result = store.vg("logs", "prune", "--before", future, "--yes")
    assert result.returncode == 125
    assert "in the future" in result.stderr and len(result.stderr.splitlines()) == 1
    assert store.listed() == set(store.seeds)


def test_prune_dry_run_shows_what_would_go_and_changes_nothing(store: Store) -> None:
    recordings = store.data_dir / "recordings"
    recordings.mkdir()
    for name in ("ten-days", "five-days", "thirty-minutes"):
        (recordings / f"{store.ids[name]}.cast").write_text("{}\n")
    layer = store.data_dir / "workspaces" / store.ids["ten-days"]
    layer.mkdir(parents=True)
    result = store.vg("logs", "prune", "--before", "4d", "--dry-run")
    assert result.returncode == 0, result.stderr
    oldest, newest = _store_form(store.seeds["ten-days"]), _store_form(store.seeds["five-days"])
    assert "would remove 2 sessions started before " in result.stdout
    assert f"(oldest {oldest}, newest {newest}; events up to 2), 2 recordings and 1 workspace layers" in result.stdout
    assert result.stdout.endswith("dry run: nothing removed\n")
    assert store.listed() == set(store.seeds)
    assert len(list(recordings.iterdir())) == 3 and layer.is_dir()
    result = store.vg("logs", "prune", "--before", "4d", "--yes")
    assert result.stdout.splitlines()[-1].startswith("pruned 2 sessions (events up to 2), 2 recordings and 1 "
                                                     "workspace layers")
    assert store.listed() == set(store.seeds) - OLD
    assert [p.name for p in recordings.iterdir()] == [f"{store.ids['thirty-minutes']}.cast"]
    assert not layer.exists()


def test_the_table_shows_local_times_that_since_reads_back(store: Store) -> None:
    """A start copied from the table selects that session: both are local time."""
    listed = store.vg("logs", "list").stdout
    [row] = [line for line in listed.splitlines() if store.ids["forty-hours"] in line]
    shown = store.seeds["forty-hours"].astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")
    assert shown in row
    assert "forty-hours" in store.listed("--since", shown) and "forty-hours" not in store.listed("--until", shown)


def test_a_second_prune_finds_nothing_and_adds_nothing(store: Store) -> None:
    assert store.vg("logs", "prune", "--before", "now", "--yes").returncode == 0
    head = json.loads(store.vg("logs", "verify", "--json").stdout)["head"]
    again = store.vg("logs", "prune", "--before", "now", "--yes")
    assert (again.returncode, again.stdout.startswith("nothing to prune before ")) == (0, True), again.stdout
    assert json.loads(store.vg("logs", "verify", "--json").stdout)["head"] == head


def test_prune_without_a_terminal_or_yes_is_refused(store: Store) -> None:
    for answer in (None, b"y\n"):  # no input at all; a "y" waiting on a pipe is not a person at a terminal
        with tempfile.TemporaryFile() as stdin:
            stdin.write(answer or b"")
            stdin.seek(0)
            result = store.vg("logs", "prune", "--before", "4d",
                              stdin=stdin.fileno() if answer else subprocess.DEVNULL)
        assert result.returncode == 125
        assert result.stderr.splitlines() == [("vectraguard: logs prune: not confirmed (stdin is not a terminal); "
                                               "add --yes to prune without asking, or --dry-run to only look")]
        assert store.listed() == set(store.seeds)


def test_dateparser_is_imported_only_for_a_relative_age(store: Store) -> None:
    """Its ~150 ms (import and English data) are paid only by a value that needs it."""
    def imported(value: str) -> bool:
        env = {**os.environ, "VECTRAGUARD_DATA_DIR": str(store.data_dir), "PYTHONPROFILEIMPORTTIME": "1"}
        result = subprocess.run([sys.executable, "-m", "vectraguard", "logs", "list", "--since", value], env=env,
                                capture_output=True, text=True, timeout=60, check=True)
        return any(line.rstrip().endswith("| dateparser") for line in result.stderr.splitlines())

    assert not imported("yesterday") and not imported("2026-11-30T10:24:00+01:00")
    assert imported("2 hours ago")


@pytest.mark.parametrize(("answer", "pruned"), [(b"y\n", True), (b"n\n", False), (b"\n", False)])
def test_prune_asks_on_a_terminal(store: Store, answer: bytes, pruned: bool) -> None:
    env = {**os.environ, "VECTRAGUARD_DATA_DIR": str(store.data_dir), "TZ": ZONE}
    pid, fd = pty.fork()
    if pid == 0:  # the child: vectraguard, with the pty as stdin and controlling terminal
        os.execve(sys.executable, [sys.executable, "-m", "vectraguard", "logs", "prune", "--before", "4d"], env)
    seen = b""
    while b"remove them? [y/N] " not in seen:
        chunk = os.read(fd, 4096)
        assert chunk, seen
        seen += chunk
    os.write(fd, answer)
    try:
        while chunk := os.read(fd, 4096):
            seen += chunk
    except OSError:  # EIO: the child has closed the terminal
        pass
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    os.close(fd)
    assert b"would remove 2 sessions" in seen
    assert status == (0 if pruned else 125), seen
    assert store.listed() == set(store.seeds) - (OLD if pruned else set())
