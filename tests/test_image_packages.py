"""`image.packages`: a variant of the default image with extra Debian packages.

Pure parts first (names, the recipe digest, the progress parser on real
mmdebstrap/apt/dpkg output), then real builds: a one-package variant built
on first use by a run (~1 min) and the shipped `dev` toolchain (~3.5 min the
first time on a machine; its image is content-addressed, so the session
builds it once and later sessions find it).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard.images import progress, recipe, variant

DATA = Path(__file__).parent / "data" / "mmdebstrap-verbose.txt"
BUILD_TIMEOUT = 1800
HELLO_PROFILE = "extends: default\nimage:\n  packages: [hello]\n"


# --- names and the recipe digest ---------------------------------------------

@pytest.mark.parametrize("name", ["-oAPT::x", "x", "Make", "gcc,make", "a b", "gcc;rm", "é-pkg", "pkg_1", ""])
def test_a_bad_package_name_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValueError) as error:
        variant.checked_packages([name])
    assert str(error.value) == (f"{name!r} is not a Debian package name (lower-case letters, digits, + - and ., "
                                "at least two characters, starting with a letter or digit)")


def test_names_are_sorted_and_deduplicated() -> None:
    assert variant.checked_packages(["npm", "g++", "make", "npm", "libc6.1-dev"]) == (
        "g++", "libc6.1-dev", "make", "npm")


def test_the_variant_is_named_by_its_recipe() -> None:
    base = recipe.image_ref("bookworm")
    one = variant.ref_for(base, variant.checked_packages(["make", "hello"]))
    assert one == variant.ref_for(base, variant.checked_packages(["hello", "make", "hello"]))  # same list
    assert one != variant.ref_for(base, variant.checked_packages(["hello"]))  # the list changed
    assert one != variant.ref_for(recipe.image_ref("trixie"), variant.checked_packages(["make", "hello"]))
    assert one.startswith(f"{variant.REPOSITORY}:bookworm-")


def test_the_digest_follows_the_base_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    packages = variant.checked_packages(["hello"])
    before = variant.variant_plan("bookworm", packages)
    monkeypatch.setattr(recipe, "PACKAGES", (*recipe.PACKAGES, "jq"))
    after = variant.variant_plan("bookworm", packages)
    assert before.recipe_digest != after.recipe_digest and before.ref != after.ref


def test_packages_go_only_on_the_default_image() -> None:
    with pytest.raises(ValueError, match="packages can only be added to Vectra Guard's default image"):
        variant.suite_of("docker.io/library/debian:bookworm")


# --- what a profile may say ---------------------------------------------------

@pytest.fixture()
def own(tmp_path: Path) -> Caller:
    """A root caller whose user profiles are this test's own."""
    (tmp_path / "vectraguard" / "profiles.d").mkdir(parents=True)
    return Caller(None, tmp_path)


def _profile(caller: Caller, name: str, text: str) -> Path:
    path = caller.config_home / "vectraguard" / "profiles.d" / f"{name}.yaml"
    path.write_text(text)
    return path


def test_a_profile_with_a_bad_package_name_does_not_run(own: Caller, workspace: Path) -> None:
    path = _profile(own, "evil", "extends: default\nimage:\n  packages:\n    - make\n    - --aptopt=x\n")
    result = own.run(["run", "-p", "evil", "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.decode().splitlines()[:2] == [
        f"vectraguard: {path} is not a valid configuration file",
        (f"  {path}:5: image.packages.1: '--aptopt=x' is not a Debian package name: lower-case letters, digits, "
         "'+', '-' and '.', at least two characters, starting with a letter or digit (Debian Policy 5.6.1), e.g. "
         "build-essential or python3-pip"),
    ]


def test_packages_on_an_image_vectraguard_does_not_build_are_refused(own: Caller, workspace: Path) -> None:
    path = _profile(own, "elsewhere", "extends: default\nimage:\n  ref: quay.io/x/y:1\n  packages: [make]\n")
    result = own.run(["run", "-p", "elsewhere", "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert f"  {path}:3: image.ref: packages can only be added to Vectra Guard's default image " \
           "(localhost/vectraguard/default:SUITE), not quay.io/x/y:1 (image.packages is set)" in result.stderr.decode()


def test_the_short_form_meets_the_section(own: Caller, workspace: Path) -> None:
    """`image: REF` below `image: {packages}` keeps its ref; `--image REF` above runs exactly REF."""
    _profile(own, "tools", "extends: default\nimage:\n  packages: [make]\n")
    shown = json.loads(own.run(["profile", "show", "tools", "--json"], cwd=workspace).stdout)
    assert shown["image"] == {"ref": recipe.image_ref("bookworm"), "packages": ["make"]}
    _profile(own, "exact", "extends: tools\nimage: localhost/some/image:1\n")
    shown = json.loads(own.run(["profile", "show", "exact", "--json"], cwd=workspace).stdout)
    assert shown["image"] == "localhost/some/image:1"


def test_image_build_profile_needs_packages(own: Caller, workspace: Path) -> None:
    result = own.run(["image", "build", "--profile", "default"], cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.decode() == (
        "vectraguard: profile 'default' names no image.packages: it runs localhost/vectraguard/default:bookworm; "
        "`vectraguard image build` builds the default image\n")


def test_the_first_use_hint_builds_this_runs_variant(own: Caller, workspace: Path) -> None:
    """With --set image.packages+=X the hint said `image build --profile NAME`, which builds a variant without
    X: it gives the run's own image options, and that command builds the variant with X. (X does not exist in
    Debian: both builds fail at apt, ~30 s each, rather than build a variant.)"""
    missing = "vg-no-such-package"
    result = own.run(["run", "-p", "default", "--set", f"image.packages+={missing}", "--set", "limits.pids=64",
                      "--", "true"], cwd=workspace, timeout=BUILD_TIMEOUT)
    err = result.stderr.decode()
    assert result.returncode == 125, err
    ref = variant.ref_for(recipe.image_ref("bookworm"), (missing,))
    ahead = f"vectraguard image build --profile default --set image.packages+={missing}"
    assert f"vectraguard: profile default runs on {ref} (the default image with {missing}), which is not built " \
           f"yet: building it now (`{ahead}` does it ahead)" in err, err
    built = own.run(ahead.split()[1:], cwd=workspace, timeout=BUILD_TIMEOUT)
    assert built.returncode != 0
    assert f"building rootfs of Debian bookworm with mmdebstrap and {missing} " in built.stderr.decode()
    assert f"Unable to locate package {missing}" in built.stderr.decode()
    for args, said in ((["image", "build", "--set", "image.packages+=jq"], "give the profile whose variant"),
                       (["image", "build", "--profile", "default", "--set", "limits.pids=9"], "only image keys")):
        refused = own.run(args, cwd=workspace)
        assert refused.returncode == 125 and said in refused.stderr.decode(), refused.stderr


# --- the progress display -----------------------------------------------------

def _fed(terminal: bool) -> tuple[progress.Display, str]:
    out = io.StringIO()
    display = progress.Display(out, terminal=terminal)
    for line in DATA.read_text().splitlines():
        display.feed(line)
    display.close()
    return display, out.getvalue()


def test_progress_counts_packages_from_real_mmdebstrap_output() -> None:
    """The recorded build: 69 essential packages (dpkg), then 28 more (apt in the chroot)."""
    lines = DATA.read_text().splitlines()
    state, totals = progress.Progress(), []
    for line in lines:
        state = progress.parse(state, line)
        if state.total and state.total not in totals:
            totals.append(state.total)
        if state.phase_name == "installing packages" and state.configured == state.total == 28:
            assert (state.downloaded, state.unpacked) == (28, 28)
    assert totals == [69, 28]
    assert state.phase_name == "writing the image"


def test_progress_without_a_terminal_is_a_few_plain_lines() -> None:
    _, text = _fed(terminal=False)
    lines = text.splitlines()
    assert "\r" not in text and "\033" not in text
    assert lines[0] == "vectraguard: [1/6] reading package lists"
    assert "vectraguard: [4/6] installing essential packages: 69 of 69 downloaded, 69 unpacked, 69 set up" in lines
    assert "vectraguard: [5/6] installing packages: 28 of 28 downloaded, 28 unpacked, 28 set up" in lines
    assert len(lines) < 25


def test_progress_on_a_terminal_redraws_one_line() -> None:
    _, text = _fed(terminal=True)
    assert "\n" not in text
    frames = text.split("\r\033[2K")
    assert "[5/6] installing packages #################### 100% of 28 " in "".join(frames)
    assert text.endswith("\r\033[2K")  # the line is cleared for what follows


def test_progress_finds_a_real_terminal_and_redraws_on_it() -> None:
    """A pseudo-terminal as stderr: the display notices it (isatty) and draws in place."""
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "w") as stream:
        display = progress.Display(stream)
        assert display.terminal
        for line in DATA.read_text().splitlines()[:300]:
            display.feed(line)
        display.close()
    seen = b""
    while not seen.endswith(b"\r\033[2K"):
        seen += os.read(controller, 65536)
    os.close(controller)
    assert b"\r\033[2K[2/6] downloading essential packages " in seen and b"\n" not in seen


# --- real builds --------------------------------------------------------------

def _inspect(caller: Caller, ref: str) -> dict[str, object] | None:
    argv, env = caller.argv(["podman", "image", "inspect", "--format", "json", ref])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None  # type: ignore[no-any-return]


def _remove_image(caller: Caller, ref: str) -> None:
    argv, env = caller.argv(["podman", "image", "rm", "--force", ref])
    subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)


Hello = tuple[Caller, Path, str, list[tuple[int, bytes, bytes]]]


@pytest.fixture(scope="module")
def hello(root: Caller) -> Iterator[Hello]:
    """A profile with one small package, its variant built by its first runs — two at once, which
    must build it once — and removed at the end (only this module makes it)."""
    home = Path(tempfile.mkdtemp(prefix="vg-hello-"))
    (home / "vectraguard" / "profiles.d").mkdir(parents=True)
    (home / "vectraguard" / "profiles.d" / "hello.yaml").write_text(HELLO_PROFILE)
    work = Path(tempfile.mkdtemp(prefix="vg-hello-ws-"))
    work.chmod(0o755)
    caller = Caller(None, home)
    ref = variant.ref_for(recipe.image_ref("bookworm"), ("hello",))
    _remove_image(caller, ref)
    argv, env = caller.argv(caller.vg(["run", "-p", "hello", "--", "hello"]),
                            {"VECTRAGUARD_DATA_DIR": str(home / "data")})
    runs = [subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True) for _ in range(2)]
    outputs = [run.communicate(timeout=BUILD_TIMEOUT) for run in runs]
    firsts = [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs)]
    caller.wait_for_removals()
    yield caller, work, ref, firsts
    _remove_image(caller, ref)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def test_a_first_run_builds_the_variant_with_progress_then_runs(hello: Hello) -> None:
    _, _, ref, firsts = hello
    for status, stdout, stderr in firsts:
        assert status == 0, stderr.decode()
        assert stdout == b"Hello, world!\n"
    builders = [stderr.decode() for _, _, stderr in firsts if b"building it now" in stderr]
    assert len(builders) == 1, [stderr.decode() for _, _, stderr in firsts]  # the other waited, then found it
    stderr = builders[0]
    assert f"vectraguard: profile hello runs on {ref} (the default image with hello), which is not built yet" in stderr
    # Not a terminal: plain progress lines, counts out of N.
    assert "vectraguard: [5/6] installing packages: " in stderr and "\r" not in stderr
    assert f"vectraguard: done: {ref} sha256:" in stderr


def test_the_variant_is_labelled_and_recorded(hello: Hello) -> None:
    caller, _, ref, _ = hello
    image = _inspect(caller, ref)
    assert image is not None
    labels = image["Labels"]
    assert isinstance(labels, dict)
    digest = variant.variant_plan("bookworm", ("hello",)).recipe_digest
    assert labels[recipe.LABEL] == "variant" and labels[recipe.LABEL_PACKAGES] == "hello"
    assert labels[recipe.LABEL_RECIPE] == digest and ref.endswith(digest[:16])
    built = json.loads((caller.config_home / "data" / "images" / f"variant-{digest[:16]}.json").read_text())
    assert built["ref"] == ref and built["recipe"] == digest and built["extra"] == ["hello"]
    assert built["id"] == f"sha256:{image['Id']}"


def test_the_next_run_and_image_build_find_it(hello: Hello) -> None:
    caller, work, ref, _ = hello
    again = caller.run(["run", "-p", "hello", "--", "sh", "-c", "command -v hello"], cwd=work)
    assert again.returncode == 0 and again.stdout == b"/usr/bin/hello\n"
    assert again.stderr == b""
    built = caller.run(["image", "build", "--profile", "hello"], cwd=work)
    assert built.returncode == 0
    assert built.stderr.decode().startswith(f"vectraguard: {ref} already exists (")


def test_image_list_shows_the_size_podman_reports(hello: Hello) -> None:
    caller, work, ref, _ = hello
    listed = json.loads(caller.run(["image", "list", "--json"], cwd=work).stdout)
    assert listed
    for entry in listed:
        if entry["ref"] == "<none>":
            continue
        image = _inspect(caller, entry["ref"])
        assert image is not None and entry["size"] == image["Size"], entry
    assert [entry["packages"] for entry in listed if entry["ref"] == ref] == [["hello"]]


# --- the shipped dev toolchain --------------------------------------------------

@pytest.fixture(scope="session")
def dev_image(root: Caller) -> str:
    """The `dev` profile's image, built once (~3.5 min on a fresh machine) unless it exists."""
    work = Path(tempfile.mkdtemp(prefix="vg-dev-image-"))
    result = root.run(["image", "build", "--profile", "dev"], cwd=work, timeout=BUILD_TIMEOUT,
                      extra_env={"VECTRAGUARD_DATA_DIR": str(work)})
    shutil.rmtree(work, ignore_errors=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode().strip()


def test_dev_has_its_toolchain(root: Caller, dev_image: str, workspace: Path) -> None:
    result = root.run(["run", "-p", "dev", "--workspace", "ro", "--", "make", "--version"], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().startswith("GNU Make ")
    tools = "gcc g++ make pkg-config pip3 node npm git python3"
    script = (f"for t in {tools}; do command -v $t >/dev/null || echo missing $t; done; "
              "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'import sys; print(sys.prefix)'")
    result = root.run(["run", "-p", "dev", "--workspace", "ro", "--yes", "--", "sh", "-c", script], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"/tmp/v\n"
