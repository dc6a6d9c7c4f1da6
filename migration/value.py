"""Frozen value objects for the modules every command imports, without ``dataclasses``.

``import dataclasses`` pulls in ``inspect`` (and ``ast``, ``dis``, ``tokenize``), and each
``@dataclass`` compiles its methods with ``exec`` when its module is imported: together more
than the rest of ``python -m migration --help`` costs. ``errors.Location`` and
``settings.Settings``, which every command loads, derive from ``Value`` instead: fields are
the class's ``__slots__`` (in ``__init__``'s positional order); equality, hash, repr,
``replace``, pickling and copying go by them, and assignment after ``__init__`` is refused
as on a frozen dataclass.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Self


class Value:
    __slots__: tuple[str, ...] = ()

    def _set(self, **fields: object) -> None:
        """Assign the fields; for ``__init__`` only."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen "
                             f"{type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, self._values())

    def replace(self, **changes: object) -> Self:
        """A copy with some fields changed (``dataclasses.replace``)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        cls: Any = type(self)
        return cls(**values)  # type: ignore[no-any-return]
