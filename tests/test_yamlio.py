"""The narrow YAML reader: what it refuses, and where it says the problem is."""

from __future__ import annotations

from pathlib import Path

import pytest

from vectraguard.config import yamlio


def problems(text: str) -> list[str]:
    return [str(p) for p in yamlio.load_yaml_text(text, "f.yaml").problems]


def test_plain_document_with_lines() -> None:
    loaded = yamlio.load_yaml_text("a: 1\nb:\n  c: [x, y]\n  d: no\n", "f.yaml")
    assert loaded.problems == []
    assert loaded.data == {"a": 1, "b": {"c": ["x", "y"], "d": "no"}}  # YAML 1.2: `no` is a string
    assert loaded.lines["b.c"] == 3 and loaded.lines["b.d"] == 4


def test_duplicate_keys_are_an_error_not_last_wins() -> None:
    assert problems("network:\n  mode: none\n  mode: full\n") == [
        "f.yaml:3: network.mode: duplicate key (first set on line 2)"]


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    found = problems(bomb)
    assert found and all("anchors and aliases are not allowed" in p for p in found)


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/name:os.system", "!custom"])
def test_tags_are_refused(tag: str) -> None:
    found = problems(f"image: {tag} x\n")
    assert len(found) == 1 and found[0].startswith("f.yaml:1: image: tag ")


def test_deep_nesting_is_refused() -> None:
    assert problems("a: " + "[" * 10000 + "]" * 10000 + "\n")[0].endswith("nested deeper than 32 levels")
    assert "nested deeper than 32 levels" in problems("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)))[-1]


def test_syntax_error_is_located() -> None:
    assert problems("a: [1, 2\nb: 3\n")[0].startswith("f.yaml:")


def test_non_utf8_and_size_cap(tmp_path: Path) -> None:
    _, found = yamlio.decode_config(b"a: 1\nb: \xff\n", "f.yaml")
    assert [str(p) for p in found] == ["f.yaml:2: not valid UTF-8"]
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (yamlio.MAX_FILE_BYTES + 1))
    _, found = yamlio.read_config_bytes(big)
    assert [str(p) for p in found] == [f"{big}: larger than the 1024 KiB limit"]


def test_non_string_keys_are_refused() -> None:
    assert problems("1: a\n") == ["f.yaml:1: key 1 must be a string"]
