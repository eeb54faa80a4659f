"""Shared fixtures: the shipped model and a small user model with state to protect."""
from __future__ import annotations

import pytest
import torch

import cnn_widgets as cw
from model_state import TinyNet, assert_unchanged, make_user_model, snapshot  # noqa: F401  (re-exported for tests)


@pytest.fixture(scope="session")
def fashion():
    return cw.load_model("fashion-cnn", device="cpu")


@pytest.fixture
def user_model():
    return make_user_model()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small computations: as fast, and much faster when
    other work shares the two cores (OpenMP threads then spin waiting on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
