"""Name -> class lookup for pluggable algorithms, so adding one touches one file and one line.

Entries are import paths, loaded on first use: a registry of twenty algorithms costs nothing
at import time, and a missing optional dependency only bites the user who asks for it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import warnings
from typing import Any, Mapping

from tunelab.errors import ConfigError
from tunelab.values import plain


class Registry:
    """``peer_names``: options as Ray Tune or Optuna name them, to the name they have here, so that
    a user coming from there is told the name to use instead of only the list of options."""

    def __init__(self, kind: str, entries: Mapping[str, str],
                 peer_names: Mapping[str, tuple[str, ...]] | None = None):
        self.kind, self._entries, self._peer_names = kind, dict(entries), dict(peer_names or {})

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
            hint = f"; did you mean {close[0]!r}? Known: " if close else "; known: "
            raise ConfigError(f"unknown {self.kind} {name!r}{hint}{', '.join(self.names())}")
        target = self._entries[key]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[key] = target
        return target

    def _unknown(self, name: str, n_args: int, options: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(the options the algorithm takes after ``n_args`` positional arguments, those of
        ``options`` it does not take); a constructor with ``**kwargs`` takes anything."""
        params = inspect.signature(self.get(name).__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return list(options), []
        allowed = [p for p in list(params)[1 + n_args:] if params[p].kind is not inspect.Parameter.VAR_POSITIONAL]
        return allowed, [k for k in options if k not in allowed]

    def still_taken(self, name: str, n_args: int, recorded: Mapping[str, Any]) -> dict[str, Any]:
        """The recorded options the algorithm still takes: one retired since the study was
        stored is dropped with a warning, so an old study still opens."""
        _, dropped = self._unknown(name, n_args, recorded)
        if dropped:
            warnings.warn(f"{self.kind} {name!r} no longer has the option(s) {', '.join(dropped)} recorded with "
                          "the study; they are ignored", stacklevel=3)
        return {k: v for k, v in recorded.items() if k not in dropped}

    def create(self, name: str, *args: Any, options: Mapping[str, Any] | None = None) -> Any:
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(f"{self.kind}_options must be a dict of option names to values, e.g. "
                              f"{{'option': value}}; got {type(options).__name__} {options!r}")
        # numpy numbers (a value from an array, a config) as the plain ones they stand for: checked
        # as counts and stored as JSON with the study, a np.int64(5) was refused as no integer
        options = {key: plain(value) for key, value in (options or {}).items()}
        allowed, unknown = self._unknown(name, len(args), options)
        if unknown:
            ours = next((o for o in self._peer_names.get(unknown[0], ()) if o in allowed), None)
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" (the name it has elsewhere: here it is {ours!r})" if ours else \
                f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{self.kind} {name!r} has no option {unknown[0]!r}{hint}; "
                              f"options: {', '.join(allowed) or '(none)'}")
        try:
            built = self.get(name)(*args, **options)
        except ConfigError:
            raise  # the algorithm's own message
        except (TypeError, ValueError):  # an option of the wrong kind met inside: said the way below
            self._check_kinds(name, options)
            raise
        self._check_kinds(name, options)  # what the algorithm's own checks let through (True for a count)
        return built

    def _check_kinds(self, name: str, options: Mapping[str, Any]) -> None:
        """An option whose default is a number takes a number, and one whose default is True or
        False takes True or False: a value of another kind ("0.2" from a config file) is
        refused, saying so, rather than failing inside the algorithm with a TypeError. The
        algorithm's own checks speak first, where it has them."""
        params = inspect.signature(self.get(name).__init__).parameters
        for key, value in options.items():
            default = params[key].default if key in params else inspect.Parameter.empty
            if isinstance(default, bool):
                wrong = not isinstance(value, bool)
            elif isinstance(default, (int, float)):  # (some also take a dict or list: per parameter)
                wrong = isinstance(value, (bool, str, bytes)) or (isinstance(value, float) and value != value)
            else:
                continue
            if wrong:
                expected = "True or False" if isinstance(default, bool) else "a number"
                raise ConfigError(f"{self.kind} {name!r}: option {key!r} must be {expected} (default {default!r}); "
                                  f"got {value!r}")
