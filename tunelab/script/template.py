"""Command templates: ``python train.py --lr {lr} --epochs {budget}`` -> an argument list.

A string command is split like a shell would split it *before* values are filled in, so a value
with spaces or quotes stays one argument and nothing is ever run through a shell. A token whose
placeholder names a parameter that is inactive in this configuration (a conditional one) is
dropped whole, so write conditional flags as one token: ``--nesterov={nesterov}``.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from typing import Any, Mapping, Sequence

#: Placeholders every command may use besides the space's parameters.
BUILTINS = {
    "budget": "the fidelity level the trial runs to (fidelity: max until multi-fidelity schedulers pick it)",
    "seed": "the trial's seed",
    "trial": "the trial's number",
    "trial_dir": "the trial's own folder (logs, config.json)",
    "checkpoint_dir": "a folder kept with the trial for checkpoints",
    "config_file": "a JSON file holding the trial's configuration",
    "python": "the Python interpreter running tunelab",
    "study": "the study's name",
}


class TemplateError(ValueError):
    """A template that cannot be parsed (the caller adds where it was written)."""


def format_value(value: Any) -> str:
    """Strings as they are, everything else as JSON (true, false, null, 0.001, 32)."""
    return value if isinstance(value, str) else json.dumps(value)


def whole(value: float) -> float | int:
    """A level as a script's argument parser expects it: 9 epochs, not 9.0; 0.5 stays 0.5."""
    return int(value) if float(value).is_integer() else value


def env_name(param: str) -> str:
    """TUNELAB_PARAM_<NAME>: the parameter name upper-cased, other characters as '_'."""
    return "TUNELAB_PARAM_" + re.sub(r"\W", "_", param).upper()


class Template:
    """An argument list with ``{name}`` / ``{name:format}`` placeholders; ``{{`` is a literal brace."""

    def __init__(self, command: str | Sequence[str]):
        if isinstance(command, str):
            try:
                tokens = shlex.split(command)
            except ValueError as err:
                raise TemplateError(f"cannot split the command like a shell: {err}") from None
        else:
            tokens = list(command)
        if not tokens:
            raise TemplateError("the command is empty")
        self.text = command if isinstance(command, str) else shlex.join(tokens)
        self.tokens = tokens
        self._parsed = [self._parse(token) for token in tokens]

    @staticmethod
    def _parse(token: str) -> list[tuple[str, str | None, str]]:
        try:
            parts = list(string.Formatter().parse(token))
        except ValueError as err:
            raise TemplateError(f"bad braces in {token!r}: {err} (write {{{{ and }}}} for literal braces)") from None
        out = []
        for literal, name, spec, conversion in parts:
            if name is not None and not name.strip():
                raise TemplateError(f"empty placeholder {{}} in {token!r}; name a parameter, e.g. {{lr}}")
            if conversion:
                raise TemplateError(f"placeholder {{{name}!{conversion}}} in {token!r}: conversions are not supported")
            if spec and "{" in spec:
                raise TemplateError(f"nested placeholder in {token!r} is not supported")
            out.append((literal, name, spec or ""))
        return out

    @property
    def fields(self) -> list[str]:
        """Placeholder names, in order of first use."""
        seen: dict[str, None] = {}
        for parts in self._parsed:
            for _, name, _ in parts:
                if name is not None:
                    seen.setdefault(name, None)
        return list(seen)

    def render(self, values: Mapping[str, Any]) -> list[str]:
        """The argument list for ``values``; tokens naming an absent value are left out."""
        argv = []
        for parts in self._parsed:
            if any(name is not None and name not in values for _, name, _ in parts):
                continue
            text = ""
            for literal, name, spec in parts:
                text += literal
                if name is not None:
                    value = values[name]
                    try:
                        text += format(value, spec) if spec else format_value(value)
                    except (ValueError, TypeError) as err:
                        raise TemplateError(f"cannot format {name}={value!r} with {{{name}:{spec}}}: {err}") from None
            argv.append(text)
        return argv

    def render_one(self, values: Mapping[str, Any]) -> str:
        """A single-token template (a path) rendered to a string."""
        return " ".join(self.render(values))

    def __str__(self) -> str:
        return self.text
