"""`@record`: a frozen dataclass for start-up paths, defined in a tenth of the time.

`dataclasses.dataclass(frozen=True)` writes six methods of each class as
source text and compiles them: ~0.3-1 ms a class on Python 3.11, ~25 ms of
a `vectraguard run`'s start for the ~60 classes on its path. A record
compiles only its __init__ (a generic one would cost microseconds on every
instance); __repr__, __eq__, __hash__ and the frozen __setattr__ and
__delattr__ are shared, reading the field names the decorator stored.

Behaviour is that of `@dataclass(frozen=True)` for what a record may hold:
fields are the class's annotations, in order, with plain default values
(no `field(...)`, ClassVar, InitVar, kw_only or __post_init__: a
dataclass is the tool for those); __init__ takes them positionally or by
name; equality compares the fields of two instances of the same class;
the hash is that of the fields' tuple; assignment raises
dataclasses.FrozenInstanceError. Not a dataclass to the dataclasses
module: use `replace` here, not dataclasses.replace.
"""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")
_FIELDS = "__record_fields__"


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """Make `cls` a frozen record of its annotated fields."""
    names = tuple(name for name, hint in cls.__dict__.get("__annotations__", {}).items()  # noqa: RUF063 - inspect costs ~4 ms to import
                  if not str(hint).startswith(("ClassVar", "typing.ClassVar", "InitVar")))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    setattr(cls, _FIELDS, names)
    setattr(cls, "__match_args__", names)  # noqa: B010 - mypy refuses the assignment to a type
    setattr(cls, "__init__", _init(cls, names, defaults))  # noqa: B010 - likewise
    for method in (__repr__, __eq__, __hash__, __setattr__, __delattr__):
        setattr(cls, method.__name__, method)
    return cls


@dataclass_transform(frozen_default=True, order_default=True)
def ordered_record(cls: type[T]) -> type[T]:
    """`record`, ordered as `@dataclass(frozen=True, order=True)` is: by the fields' tuple."""
    record(cls)
    for method in (__lt__, __le__, __gt__, __ge__):
        setattr(cls, method.__name__, method)
    return cls


def _init(cls: type, names: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    """The one compiled method: an __init__ with the fields as its parameters."""
    params = ", ".join(f"{name}=_default_{name}" if name in defaults else name for name in names)
    body = "".join(f"\n    _set(self, {name!r}, {name})" for name in names) or "\n    pass"
    scope: dict[str, Any] = {"_set": object.__setattr__, **{f"_default_{n}": v for n, v in defaults.items()}}
    exec(f"def __init__(self, {params}):{body}" if names else f"def __init__(self):{body}", scope)  # noqa: S102
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in getattr(obj, _FIELDS))


def __repr__(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(self, _FIELDS))
    return f"{self.__class__.__qualname__}({fields})"


def __eq__(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def __hash__(self: Any) -> int:
    return hash(_values(self))


def __lt__(self: Any, other: object) -> bool:
    return _values(self) < _values(other) if other.__class__ is self.__class__ else NotImplemented


def __le__(self: Any, other: object) -> bool:
    return _values(self) <= _values(other) if other.__class__ is self.__class__ else NotImplemented


def __gt__(self: Any, other: object) -> bool:
    return _values(self) > _values(other) if other.__class__ is self.__class__ else NotImplemented


def __ge__(self: Any, other: object) -> bool:
    return _values(self) >= _values(other) if other.__class__ is self.__class__ else NotImplemented


def __setattr__(self: Any, name: str, value: Any) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def __delattr__(self: Any, name: str) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot delete field {name!r}")


def replace(obj: T, **changes: Any) -> T:
    """A copy of record `obj` with `changes` (dataclasses.replace's counterpart)."""
    names = getattr(obj, _FIELDS)
    for name in changes:
        if name not in names:
            raise TypeError(f"{obj.__class__.__qualname__} has no field {name!r}")
    return obj.__class__(*[changes[name] if name in changes else getattr(obj, name) for name in names])


def as_dict(obj: Any) -> dict[str, Any]:
    """The fields of record `obj` by name (dataclasses.asdict's counterpart, one level deep)."""
    return {name: getattr(obj, name) for name in getattr(obj, _FIELDS)}
