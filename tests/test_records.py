"""@record behaves as @dataclass(frozen=True) does, for the fields it allows."""

from __future__ import annotations

import dataclasses

import pytest

from vectraguard.records import ordered_record, record, replace


@record
class Point:
    """A point, with a default."""

    x: int
    y: int = 0
    label: tuple[str, ...] = ()

    def moved(self, dx: int) -> Point:
        return replace(self, x=self.x + dx)


@dataclasses.dataclass(frozen=True)
class DataPoint:
    """The same point as a dataclass, to compare with."""

    x: int
    y: int = 0
    label: tuple[str, ...] = ()


def test_fields_positionally_by_name_and_by_default() -> None:
    assert (Point(1).x, Point(1).y, Point(1).label) == (1, 0, ())
    assert Point(1, 2, ("a",)) == Point(y=2, x=1, label=("a",))
    assert Point.__match_args__ == ("x", "y", "label")
    assert Point.__doc__ == "A point, with a default."


def test_repr_equality_and_hash_are_the_dataclass_ones() -> None:
    assert repr(Point(1, 2, ("a",))) == repr(DataPoint(1, 2, ("a",))).replace("DataPoint", "Point")
    assert Point(1) == Point(1, 0) and Point(1) != Point(2)
    assert Point(1).__eq__(DataPoint(1)) is NotImplemented  # another class, as dataclasses compare
    assert Point(1).__eq__((1, 0, ())) is NotImplemented
    assert hash(Point(1, 2)) == hash(DataPoint(1, 2)) == hash((1, 2, ()))
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_frozen() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
        del point.y
    assert point.x == 1


def test_bad_arguments_are_refused_as_dataclasses_refuse_them() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes from 2 to 4 positional arguments but 5 were given"):
        Point(1, 2, (), 4)  # type: ignore[call-arg]


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


@ordered_record
class Place:
    """Ordered by file, then line."""

    file: str
    line: int = 0


@dataclasses.dataclass(frozen=True, order=True)
class DataPlace:
    file: str
    line: int = 0


def test_ordered_records_sort_as_ordered_dataclasses_do() -> None:
    pairs = [("b", 2), ("a", 10), ("b", 1), ("a", 9), ("a", 0)]
    assert [(p.file, p.line) for p in sorted(Place(*pair) for pair in pairs)] == \
           [(p.file, p.line) for p in sorted(DataPlace(*pair) for pair in pairs)]
    assert Place("a", 1) <= Place("a", 1) < Place("a", 2) and Place("b") >= Place("a", 5) > Place("a", 4)
    with pytest.raises(TypeError):
        assert Place("a") < DataPlace("a")  # type: ignore[operator]
    with pytest.raises(TypeError):
        assert Point(1) < Point(2)  # type: ignore[operator]  # a plain record has no order


def test_replace() -> None:
    assert Point(1, 2).moved(3) == Point(4, 2)
    assert replace(Point(1, 2, ("a",)), y=5) == Point(1, 5, ("a",))
    with pytest.raises(TypeError, match="Point has no field 'z'"):
        replace(Point(1), z=1)
