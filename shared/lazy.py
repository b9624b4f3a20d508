"""Modules imported on first attribute access, so a cold start pays only for the routes it serves."""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any


class _LazyModule:
    """Stands for a module until an attribute is read, then imports it once (thread-safe)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                module = self._module
        return getattr(module, attribute)


def lazy_import(name: str) -> Any:
    """A stand-in for module `name` that imports it when first used."""
    return _LazyModule(name)
