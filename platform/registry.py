"""A tiny name -> builder registry shared by backbones and colorizers.

Configs name their components (`colorizer="training-free"`, `backbone="efficientnet_lite0"`)
and whatever builds them (the pipeline, index descriptors, evaluation) looks the name up here;
one registry type keeps the lookup, the duplicate check and the error message the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from chromaref.platform.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Builders keyed by name; an unknown name raises a ConfigError listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def wrap(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return wrap

    def names(self) -> list[str]:
        return sorted(self._builders)

    def build(self, name: str, **kwargs: object) -> T:
        try:
            builder = self._builders[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {known}") from None
        return builder(**kwargs)
