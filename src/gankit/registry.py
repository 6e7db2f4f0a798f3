"""Small explicit registries: name -> object, with a clear error that lists the valid names on a miss."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of components (models, recipes, losses, datasets, metrics)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; ``meta`` holds extras such as a config class."""

        def decorate(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            self._meta[name] = meta
            return obj

        return decorate

    def get(self, name: str) -> T:
        """Return the component called ``name``; a miss raises and names the valid keys."""
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}")
        return self._items[name]

    def meta(self, name: str) -> dict[str, Any]:
        """Return the extras registered with ``name``."""
        self.get(name)
        return self._meta[name]

    def names(self, ordered: bool = False) -> list[str]:
        """Registered names, sorted (``ordered``: in the order they were registered)."""
        return list(self._items) if ordered else sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self.names())


MODELS: Registry[Callable] = Registry("model")
RECIPES: Registry[Callable] = Registry("recipe")
LOSSES: Registry[Any] = Registry("loss")
DATASETS: Registry[Callable] = Registry("dataset")
METRICS: Registry[Callable] = Registry("metric")
TASKS: Registry[Callable] = Registry("task")  # the family contracts (gankit.tasks), named on each model's line
