"""Presets by name, as a study file or a script names them."""

from __future__ import annotations

import pytest

from tunelab import presets
from tunelab.errors import SpaceError


def test_a_preset_named_by_something_not_text_is_a_clear_error():
    with pytest.raises(SpaceError, match=r"unknown preset \['image_classification'\]; known presets: "):
        presets.get(["image_classification"])
