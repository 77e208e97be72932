"""Read access by name for the immutable direction sets (W-space and style-space alike)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


ItemT = TypeVar("ItemT", bound=Named)


class NamedItems(Generic[ItemT]):
    """Mixin for a frozen dataclass whose ``directions`` field is a tuple of named items."""

    __slots__ = ()
    directions: tuple[ItemT, ...]

    def __len__(self) -> int:
        return len(self.directions)

    def __iter__(self) -> Iterator[ItemT]:
        return iter(self.directions)

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.directions)

    def __getitem__(self, name: str) -> ItemT:
        for direction in self.directions:
            if direction.name == name:
                return direction
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Item names in order."""
        return tuple(d.name for d in self.directions)
