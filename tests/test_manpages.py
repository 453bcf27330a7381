"""The man pages: vectraguard(1) is generated, vectraguard-profile(5) is written by hand.

- man/vectraguard.1 must be what contrib/make-manpage.sh produces from the
  parser today (only the .TH line, which carries the date, may differ), with
  its sections and each option described once;
- man/vectraguard-profile.5 must document every key of every schema in
  schemas/, in the section about that kind of file;
- both must render with man(1) without a single warning.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE_1 = REPO / "man" / "vectraguard.1"
PAGE_5 = REPO / "man" / "vectraguard-profile.5"
MAKE_MANPAGE = REPO / "contrib" / "make-manpage.sh"
SCHEMAS = sorted((REPO / "schemas").glob("*.schema.json"))

# Which section of vectraguard-profile(5) documents the keys of which schema.
SECTION_OF_SCHEMA = {
    "profile": "PROFILE KEYS",
    "project": "PROJECT FILE",
    "policy": "SYSTEM POLICY",
}

# How contrib/make-manpage.sh makes the page (test_make_manpage_script_is_what_we_run
# keeps the two in step).
GENERATOR = ["-m", "vectraguard.manpage", "--output"]
# The sections a reader of vectraguard(1) looks for, in this order.
SECTIONS_1 = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXAMPLES", "FILES", "ENVIRONMENT",
              "EXIT STATUS", "SEE ALSO"]


# --- (a) vectraguard.1 is not stale, and describes each option once ----------------


def _without_th(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(".TH ")]


def test_make_manpage_script_is_what_we_run() -> None:
    """If contrib/make-manpage.sh changes, this test must change with it."""
    script = MAKE_MANPAGE.read_text()
    assert " ".join(GENERATOR) + " man/vectraguard.1" in script, (
        "contrib/make-manpage.sh runs the generator differently: update GENERATOR in tests/test_manpages.py")


def _generate(tmp_path: Path, module_dir: Path = REPO) -> str:
    generated = tmp_path / "vectraguard.1"
    env = {**os.environ, "PYTHONPATH": str(module_dir)}
    result = subprocess.run([sys.executable, *GENERATOR, str(generated)], cwd=module_dir, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"the generator failed:\n{result.stdout}{result.stderr}"
    return generated.read_text()


def test_vectraguard_1_is_not_stale(tmp_path: Path) -> None:
    committed, fresh = _without_th(PAGE_1.read_text()), _without_th(_generate(tmp_path))
    diff = list(difflib.unified_diff(committed, fresh, "man/vectraguard.1 (committed)",
                                     "man/vectraguard.1 (from vectraguard/cli.py now)", lineterm=""))
    assert not diff, (
        "man/vectraguard.1 is stale: it no longer matches the parser in vectraguard/cli.py. "
        "Run `contrib/make-manpage.sh /opt/vectraguard/bin/python3` and commit man/vectraguard.1.\n"
        + "\n".join(diff[:80])
    )


def test_vectraguard_1_has_its_sections_and_each_option_once() -> None:
    roff = PAGE_1.read_text()
    assert [line[4:].strip('"') for line in roff.splitlines() if line.startswith(".SH ")] == SECTIONS_1
    lines = roff.splitlines()
    entries = [(plain_line(line), lines[index + 1]) for index, line in enumerate(lines)
               if index and lines[index - 1] == ".TP" and line.startswith("\\fB\\-")]
    # Each option is described once (an option of the same name that means something else
    # in another command, e.g. pool stop's --profile, is another option).
    assert len(entries) == len(set(entries)), [entry for entry in entries if entries.count(entry) > 1][:5]
    others = {("--allow", "an allowlist entry, as network.allow takes it"),  # kube gateway's own option
              ("--set", "with \\-\\-profile")}  # image build's: image keys only
    for flag in ("--mount", "--network", "--allow", "--set", "--workspace", "--isolation"):  # run's, five times before
        assert sum(1 for tag, text in entries if tag.split(",")[-1].split()[0] == flag
                   and (flag, text.split(":")[0]) not in others) == 1, flag
    assert sum(1 for _, text in entries if text.startswith("machine\\-readable output (")) == 1
    commands = sections(roff)["COMMANDS"]
    start = commands.index(".SS vectraguard sandbox shell")
    shell = commands[start:start + 8]
    assert any("run option" in plain_line(line) and "vectraguard run" in plain_line(line) for line in shell), shell


# Commands whose positional the synopsis shows as required, with what each says when it is missing.
REQUIRED = {
    ("run",): "vectraguard: no command given",
    ("sandbox", "run"): "vectraguard: no command given",
    ("exec",): "vectraguard: no command given",
    ("check",): "vectraguard check: no command given",
    ("approvals", "grant"): "vectraguard approvals grant: no command given",
    ("kube", "generate"): "vectraguard kube generate: no command given",
    ("completion",): "vectraguard completion: name the shell",
}


def test_the_synopsis_shows_what_is_required_as_required(tmp_path: Path) -> None:
    """`exec ... ID [-- CMD [ARG...]]` and `completion [SHELL]` read as optional though both are required:
    the synopsis marks exactly the commands that refuse to go on without it, and each does refuse."""
    roff = PAGE_1.read_text()
    synopsis = {plain_line(line) for line in roff.splitlines() if line.startswith("\\fBvectraguard ")}
    assert "vectraguard exec [OPTIONS] ID -- CMD [ARG...]" in synopsis
    assert "vectraguard completion SHELL" in synopsis
    assert "vectraguard sandbox shell [OPTIONS] [-- CMD [ARG...]]" in synopsis  # a shell needs no command
    marked = {words for words in (tuple(line.split(" [")[0].split()[1:]) for line in synopsis
                                  if " -- CMD" in line and "[-- CMD" not in line or line.endswith(" SHELL"))}
    assert {tuple(w for w in words if w.isalpha() and w.islower()) for words in marked} == set(REQUIRED)
    for words, said in REQUIRED.items():
        args = [*words, *(["0123abcd"] if words == ("exec",) else [])]
        done = subprocess.run([sys.executable, "-m", "vectraguard", *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
        assert done.returncode == 125 and done.stderr.startswith(said), (words, done.stderr)


def test_a_new_command_and_run_option_appear_by_themselves(tmp_path: Path) -> None:
    """Others add commands and run options to cli.py: the page picks them up from the parser."""
    copy = tmp_path / "tree"
    shutil.copytree(REPO / "vectraguard", copy / "vectraguard", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("profiles", "schemas"):
        (copy / name).symlink_to(REPO / name)
    cli = copy / "vectraguard" / "cli.py"
    text = cli.read_text()
    text = text.replace('    _add_layer_options(p)\n    p.add_argument("command"',
                        '    p.add_argument("--frobnicate", metavar="HOW", help="frobnicate the sandbox")\n'
                        '    _add_layer_options(p)\n    p.add_argument("command"', 1)
    text = text.replace('    ("doctor", "check what',
                        '    ("zap", "zap things", lambda p: p.add_argument("--json", action="store_true", '
                        'help="machine-readable output")),\n    ("doctor", "check what', 1)
    assert "--frobnicate" in text and '"zap"' in text, "cli.py changed shape: update this test"
    cli.write_text(text)
    page = _generate(tmp_path, copy)
    assert page.count("\\fB\\-\\-frobnicate\\fR \\fIHOW\\fR") == 1  # described once, under run
    assert ".SS vectraguard zap" in page and "\\fBvectraguard zap\\fR [\\fIOPTIONS\\fR]" in page
    assert re.search(r"\bzap[,)]", page)  # --json's entry names it among its commands


# --- (b) vectraguard-profile.5 documents every schema key -------------------------


def schema_keys(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every property, recursively; the properties of
    list items are written `list[].key` (e.g. filesystem.mounts[].source)."""
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, sub
        yield from schema_keys(sub, f"{path}.")
        items = sub.get("items")
        if isinstance(items, dict):
            yield from schema_keys(items, f"{path}[].")


_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes: \fB \fI \fR \fP \f(CW \f[B]
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\(em"), "--"),
    (re.compile(r"\\\(bu"), "*"),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),  # any other special character
    (re.compile(r"\\[&c%]"), ""),  # zero-width, continuation, hyphenation marks
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\ "), " "),
]
_ALTERNATING = {".BR", ".RB", ".BI", ".IB", ".IR", ".RI"}  # arguments join without spaces
_ARGUMENT = re.compile(r'"([^"]*)"|(\S+)')


def unescape(text: str) -> str:
    for pattern, replacement in _ESCAPES:
        text = pattern.sub(replacement, text)
    return text


def plain_line(line: str) -> str:
    """One roff source line as the words a reader sees (no macros, escapes or fonts)."""
    if line.startswith('.\\"'):
        return ""
    if not line.startswith("."):
        return unescape(line)
    macro, _, rest = line.partition(" ")
    if macro in (".B", ".I", ".SM"):
        return unescape(rest.replace('"', ""))
    if macro in _ALTERNATING:
        return "".join(unescape(quoted or bare) for quoted, bare in _ARGUMENT.findall(rest))
    return ""  # layout macros (.TP, .PP, .IP, .nf, .RS ...) carry no text we check


def plain(roff: str) -> str:
    return "\n".join(plain_line(line) for line in roff.splitlines())


def sections(roff: str) -> dict[str, list[str]]:
    """Source lines of each .SH section, by its title."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in roff.splitlines():
        if line.startswith(".SH "):
            current = found.setdefault(line[4:].strip().strip('"'), [])
        else:
            current.append(line)
    return found


def paragraphs(lines: list[str]) -> dict[str, str]:
    """The .TP paragraphs of a section: the first word of each tag -> the
    plain text of its tag and body."""
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        if line.strip() != ".TP" or index + 1 >= len(lines):
            continue
        tag = plain_line(lines[index + 1]).split()
        if not tag:
            continue
        body = []
        for following in lines[index + 1:]:
            if following.startswith((".TP", ".SH", ".SS")) and body:
                break
            body.append(plain_line(following))
        found[tag[0]] = " ".join(body)
    return found


def _schema_id(path: Path) -> str:
    return path.name.removesuffix(".schema.json")


@pytest.mark.parametrize("schema_path", SCHEMAS, ids=_schema_id)
def test_profile_page_documents_every_schema_key(schema_path: Path) -> None:
    name = _schema_id(schema_path)
    assert name in SECTION_OF_SCHEMA, (
        f"schemas/{schema_path.name} is new: give its keys a section in man/vectraguard-profile.5 "
        "and name that section in SECTION_OF_SCHEMA (tests/test_manpages.py)"
    )
    roff = PAGE_5.read_text()
    keys = list(schema_keys(json.loads(schema_path.read_text())))
    assert keys, f"no properties found in {schema_path}"

    # Every key name appears in the page's text.
    text = plain(roff)
    unnamed = sorted({path.rsplit(".", 1)[-1] for path, _ in keys
                      if not re.search(rf"(?<![\w-]){re.escape(path.rsplit('.', 1)[-1])}(?![\w-])", text)})
    assert not unnamed, f"man/vectraguard-profile.5 never mentions these {name} keys: {', '.join(unnamed)}"

    # ... and each has its own paragraph, under its full dotted name, in the
    # section about its kind of file (a profile's network.allow does not
    # document the policy's network.allow).
    section = SECTION_OF_SCHEMA[name]
    page_sections = sections(roff)
    assert section in page_sections, f"man/vectraguard-profile.5 has no section {section!r}"
    documented = paragraphs(page_sections[section])
    missing = [path for path, _ in keys if path not in documented]
    assert not missing, (
        f"man/vectraguard-profile.5, section {section}: no .TP paragraph for these keys of "
        f"schemas/{schema_path.name}: {', '.join(missing)} (give each its type, default and meaning)"
    )

    # A key with a fixed set of values names every one of them.
    for path, sub in keys:
        choices = sub.get("enum") or (sub.get("items") or {}).get("enum") or []
        absent = [str(value) for value in choices
                  if not re.search(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", documented[path])]
        assert not absent, (
            f"man/vectraguard-profile.5, section {section}: the paragraph of {path} does not name "
            f"the value(s) {', '.join(absent)} that the schema allows"
        )


def test_key_walk_finds_nested_keys() -> None:
    """The walk above is what makes the check meaningful: it must reach deep keys."""
    profile = dict(schema_keys(json.loads((REPO / "schemas" / "profile.schema.json").read_text())))
    policy = dict(schema_keys(json.loads((REPO / "schemas" / "policy.schema.json").read_text())))
    assert {"limits.memory", "filesystem.workspace.mode", "filesystem.mounts[].source"} <= profile.keys()
    assert {"network.modes", "limits.max.memory"} <= policy.keys()
    assert documented_tag(".TP\n\\fBlimits.memory\\fR (size; default \\fB2Gi\\fR)\nMemory cap.") == "limits.memory"
    assert documented_tag('.TP\n.BR filesystem.tmp_size " (size)"\nSize cap.') == "filesystem.tmp_size"


def documented_tag(roff: str) -> str:
    return next(iter(paragraphs(roff.splitlines())))


# --- (c) both pages render without warnings ----------------------------------------


@pytest.mark.parametrize("page", [PAGE_1, PAGE_5], ids=lambda p: p.name)
def test_page_renders_without_warnings(page: Path) -> None:
    if shutil.which("man") is None:
        pytest.skip("man(1) is not installed (Debian: apt-get install man-db), so the page cannot be rendered")
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(page)],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"man -l {page.name} failed ({result.returncode}):\n{result.stderr}"
    assert result.stderr == "", f"man -l {page.name} warns:\n{result.stderr}"
    assert "NAME" in result.stdout and "vectraguard" in result.stdout
    # A macro that did not expand shows up as a line starting with '.', or as \f in the text.
    leftovers = [line for line in result.stdout.splitlines() if re.match(r"\.[A-Za-z]{1,2}\b", line)]
    assert not leftovers and "\\f" not in result.stdout, f"{page.name} renders raw roff: {leftovers[:5]}"


# --- (d) no page or schema says a mode or level that exists is missing -----------------


def test_no_page_or_schema_says_what_exists_is_not_available() -> None:
    """Both said so once (`none` the only network mode; lite "not available in this
    version") after allowlist, full and lite had shipped: the values a schema allows
    exist, so no description may call any of them unavailable, or the only one."""
    texts = {PAGE_5.name: plain(PAGE_5.read_text()), PAGE_1.name: plain(PAGE_1.read_text())}
    texts.update((path.name, path.read_text()) for path in SCHEMAS)
    stale = re.compile(r"not (?:available|supported|implemented) in this version|in this version only|"
                       r"only (?:network )?mode (?:this version|that runs)|this version runs only", re.IGNORECASE)
    found = {name: stale.findall(" ".join(text.split())) for name, text in texts.items()}
    assert not any(found.values()), found
    modes = paragraphs(sections(PAGE_5.read_text())["PROFILE KEYS"])["network.mode"]
    for mode in ("none", "allowlist", "full"):
        assert re.search(rf"(?<![\w-]){mode}(?![\w-])", modes), f"network.mode does not describe {mode}"
