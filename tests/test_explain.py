"""`profile show NAME --explain` fits the terminal (vectraguard/config/explain.py): the
"set by" column stays in view at 80 to 120 columns, paths abbreviated, values wrapped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.vg import Caller

NAME = "test-untrusted"


def _rows(caller: Caller, cwd: Path, env: dict[str, str]) -> list[dict[str, str]]:
    result = caller.run(["profile", "show", NAME, "--explain", "--json"], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return list(json.loads(result.stdout))


def _table(caller: Caller, cwd: Path, env: dict[str, str]) -> list[str]:
    result = caller.run(["profile", "show", NAME, "--explain"], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


@pytest.mark.parametrize("columns", ["80", "100", "120", None])
def test_the_set_by_column_is_visible_at_every_width(root: Caller, workspace: Path, columns: str | None) -> None:
    # HOME above the test's config directory: the user profile's path shows as ~/...
    env = {"HOME": str(root.config_home)}
    if columns is not None:
        env["COLUMNS"] = columns
    width = int(columns or 80)  # not a terminal and no COLUMNS: 80
    lines = _table(root, workspace, env)
    assert lines[0].split() == ["key", "value", "set", "by"]
    assert max(len(line) for line in lines) <= width, [line for line in lines if len(line) > width][:3]
    starts = {line.split()[0]: line for line in lines[2:] if line and not line.startswith(" ")}
    rows = _rows(root, workspace, env)
    assert list(starts) == [row["key"] for row in rows]  # one row per key, in order
    shipped = [row for row in rows if "/profiles/" in row["set by"] and row["set by"].endswith(tuple("0123456789"))]
    assert shipped
    for row in shipped:  # e.g. /opt/.../share/vectraguard/profiles/untrusted.yaml:11
        short = "(shipped)/" + row["set by"].split("/profiles/", 1)[1]
        if len(short) <= 24:  # fits the narrowest origin column whole
            assert starts[row["key"]].endswith(short), (row, starts[row["key"]])
    assert " ~/vectraguard/profiles.d/" in starts["image"]
    # A 64 KiB value (the shipped risk rules) takes a few lines and says where the rest is.
    assert len(lines) < 3 * len(rows)
    assert any("(--json)" in line for line in lines)
