"""Sizes, durations, CPUs and counts: one parser each, shared by files and flags."""

from __future__ import annotations

import pytest

from vectraguard import units


@pytest.mark.parametrize(("text", "value"), [
    ("512Mi", 512 << 20), ("512m", 512 << 20), ("2G", 2 << 30), ("2gi", 2 << 30), ("65536", 65536),
    (4096, 4096), ("1.5Gi", 3 << 29), ("10k", 10240), ("1Ti", 1 << 40),
    (1e9, 1_000_000_000),  # YAML reads 1e9 as a float; the schema's "integer" accepts it
])
def test_sizes(text: str | int, value: int) -> None:
    assert units.parse_size(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("12x", "'12x' is not a size (expected e.g. 512Mi, 2G or a byte count)"),
    ("0", "size must be greater than zero, got '0'"),
    ("-1", "'-1' is not a size (expected e.g. 512Mi, 2G or a byte count)"),
    (str(2**64), f"size '{2**64}' is absurdly large (maximum 1Pi)"),
    (True, "expected a size like 512Mi or 2G, not a boolean"),
    ("", "'' is not a size (expected e.g. 512Mi, 2G or a byte count)"),
    (1.5e3 + 0.25, "1500.25 is not a whole number of bytes"),
    (float("inf"), "inf is not a whole number of bytes"),
    (float("nan"), "nan is not a whole number of bytes"),
    ([1], "[1] is not a size (expected e.g. 512Mi, 2G or a byte count)"),
    (None, "None is not a size (expected e.g. 512Mi, 2G or a byte count)"),
])
def test_bad_sizes(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        units.parse_size(text)
    assert str(error.value) == message


@pytest.mark.parametrize(("text", "value"), [("30s", 30), ("10m", 600), ("1.5h", 5400), ("90", 90), (2, 2),
                                             ("500ms", 0.5), ("1d", 86400)])
def test_durations(text: str | int, value: float) -> None:
    assert units.parse_duration(text) == value


@pytest.mark.parametrize("text", ["0", "0s", "-5", "soon", "31d", "nan", "inf"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        units.parse_duration(text)


@pytest.mark.parametrize("text", ["0", "0.001", "-1", "nan", "inf", "two", "1025"])
def test_bad_cpus(text: str) -> None:
    with pytest.raises(ValueError):
        units.parse_cpus(text)


def test_format_size_round_trips() -> None:
    for value in (64 << 20, 2 << 30, 1000):
        assert units.parse_size(units.format_size(value)) == value


@pytest.mark.parametrize("value", [[30], {"s": 30}, None])
def test_durations_of_the_wrong_type_are_a_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        units.parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "count"), [(1e4, 10000), (64, 64), ("64", 64)])
def test_counts(value: float | int | str, count: int) -> None:
    assert units.parse_count(value, what="processes") == count


@pytest.mark.parametrize("value", [2.5, float("inf"), float("nan"), "2.5", [3], None])
def test_counts_are_never_truncated_or_guessed(value: object) -> None:
    with pytest.raises(ValueError):
        units.parse_count(value, what="processes")  # type: ignore[arg-type]
