"""Every example in the package's docstrings runs and shows what it says."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cnn_widgets

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(cnn_widgets.__path__, prefix="cnn_widgets.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"


def test_every_public_name_has_a_docstring():
    missing = [name for name in cnn_widgets.__all__ if not (getattr(cnn_widgets, name).__doc__ or "").strip()]
    assert not missing, missing
