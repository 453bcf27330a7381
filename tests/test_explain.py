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
    assert _whole_or_shortened(starts["image"].split()[-1], "~/vectraguard/profiles.d/test-untrusted.yaml:2")
    # A 64 KiB value (the shipped risk rules) takes a few lines and says where the rest is.
    assert len(lines) < 3 * len(rows)
    assert any("(--json)" in line for line in lines)


def _whole_or_shortened(token: str, full: str) -> bool:
    """Whether `token` shows `full` whole, or shortened from the left at a `/` with its last name whole."""
    if token == full:
        return True
    last = "/" + full.rsplit("/", 1)[-1]
    return token.startswith("…/") and full.endswith(token[1:]) and token[1:].endswith(last)


@pytest.mark.parametrize("home", [True, False])
@pytest.mark.parametrize("columns", ["80", "100", "120"])
def test_a_file_and_line_is_never_split_across_lines(root: Caller, workspace: Path, columns: str, home: bool) -> None:
    """`(shipped)/default.yaml:105` was split into `…:10` / `5`, a long path into two pieces: each origin is
    on its key's line, whole or shortened from the left (`…/default.yaml:105`), never continued below."""
    env = {"COLUMNS": columns, **({"HOME": str(root.config_home)} if home else {})}
    lines = _table(root, workspace, env)
    rows = _rows(root, workspace, env)
    index = [i for i, line in enumerate(lines) if i >= 2 and line and not line.startswith(" ")]
    shipped = "/" + rows[0]["set by"].split("/profiles/", 1)[0].lstrip("/") + "/profiles" \
        if "/profiles/" in rows[0]["set by"] else None
    assert len(index) == len(rows)
    for at, (start, row) in enumerate(zip(index, rows)):
        origin = row["set by"]
        if shipped and origin.startswith(shipped + "/"):
            origin = "(shipped)" + origin[len(shipped):]
        elif home and origin.startswith(str(root.config_home) + "/"):
            origin = "~" + origin[len(str(root.config_home)):]
        assert _whole_or_shortened(lines[start].split()[-1], origin), (lines[start], origin)
        end = index[at + 1] if at + 1 < len(index) else len(lines)
        column = len(lines[0]) - len("set by")
        assert all(len(line) <= column or not line[column:].strip() for line in lines[start + 1:end]), \
            (origin, lines[start:end])
