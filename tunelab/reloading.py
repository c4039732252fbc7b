"""A script loaded again to find the objective it defines, and the tuning it must not start.

``python train.py`` records its objective as ``__main__:objective``; re-runs (``tunelab
reproduce``, ``seed-check``, ``sensitivity``) load ``train.py`` again under another name, so its
``if __name__ == "__main__":`` part does not run. A script that tunes at its top level would tune
again on being loaded: ``tl.tune``, ``create_study`` and ``load_study`` (a top-level ask/tell
loop) refuse while one is being loaded, before they open anything.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from tunelab.errors import ConfigError

#: The script being loaded again to re-run an objective it defines (see ``loading_script``).
_loading_script: list[str] = []


@contextlib.contextmanager
def loading_script(file: str) -> Iterator[None]:
    """While ``file`` (a script that was run as ``__main__``) is loaded to find its objective, a
    study it would make at its top level (outside ``if __name__ == "__main__":``) is refused,
    before any trial runs: a re-run must not start the tuning again."""
    _loading_script.append(file)
    try:
        yield
    finally:
        _loading_script.pop()


def refuse_while_loading_script() -> None:
    if _loading_script:
        raise ConfigError(f"{_loading_script[-1]} opens a study when it is loaded (a tl.tune, create_study or "
                          "load_study call at its top level), so its objective cannot be re-run without tuning "
                          "again: put that call under if __name__ == \"__main__\":, or define the objective in a "
                          "module of its own")
