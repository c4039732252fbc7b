"""Name -> class lookup for pluggable algorithms, so adding one touches one file and one line.

Entries are import paths, loaded on first use: a registry of twenty algorithms costs nothing
at import time, and a missing optional dependency only bites the user who asks for it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Mapping

from tunelab.errors import ConfigError


class Registry:
    def __init__(self, kind: str, entries: Mapping[str, str]):
        self.kind, self._entries = kind, dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def register(self, name: str, target: str | type) -> None:
        """Add an algorithm under ``name`` (an import path 'pkg.module:Class' or the class itself)."""
        self._entries[name] = target

    def get(self, name: str) -> type:
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} must be a name (one of {', '.join(self.names())}); got {name!r}")
        key = name.strip().lower()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}{hint} Known: {', '.join(self.names())}")
        target = self._entries[key]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[key] = target
        return target

    def create(self, name: str, *args: Any, options: Mapping[str, Any] | None = None) -> Any:
        cls = self.get(name)
        options = dict(options or {})
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            allowed = [p for p in list(params)[1 + len(args):] if params[p].kind is not inspect.Parameter.VAR_POSITIONAL]
            unknown = [k for k in options if k not in allowed]
            if unknown:
                raise ConfigError(f"{self.kind} {name!r} has no option {unknown[0]!r}; "
                                  f"options: {', '.join(allowed) or '(none)'}")
        return cls(*args, **options)
