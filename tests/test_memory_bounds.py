"""Memory stays bounded: a bare module passed to the engine is freed once its
caller drops it, a FeatureMaps widget fed 100 images holds at most its cache's
bytes, and pictures drawn before an in-place change of the weights are not shown
again after it. Figures: BENCHMARKS.md (benchmarks/bench_memory_bounds.py)."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import psutil
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.engine import activations
from cnn_widgets.widgets.tile_viewer import GRID_CACHE_BYTES


def test_twenty_bare_modules_are_freed_once_dropped():
    image = torch.rand(1, 3, 16, 16)
    alive = []
    for _ in range(20):
        module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        engine.feature_maps(module, image)
        engine.filter_weights(module, 0)
        alive.append(weakref.ref(module))
        del module
    gc.collect()
    assert [ref for ref in alive if ref() is not None] == []


def test_a_new_module_never_gets_a_dropped_ones_cached_maps():
    image = torch.rand(1, 3, 16, 16)
    seen = []
    for seed in range(6):  # new modules often reuse a dropped one's id()
        torch.manual_seed(seed)
        module = nn.Sequential(nn.Conv2d(3, 4, 3))
        maps = engine.feature_maps(module, image)["0"]
        assert torch.allclose(maps, module(image)[0].detach(), atol=1e-6)
        seen.append(maps)
        del module
        gc.collect()
    assert not torch.equal(seen[0], seen[1])


def test_a_hundred_images_through_one_feature_maps_stay_within_its_caches(fashion):
    rng = np.random.default_rng(0)
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    drawn = set()
    for _ in range(100):
        maps.set_image(rng.integers(0, 256, (28, 28), dtype=np.uint8))
        maps._redraw_grid()
        assert not maps.error
        drawn.add(maps.grid_png)
    gc.collect()
    grew = process.memory_info().rss - before
    assert len(drawn) == 100  # every image was drawn
    assert len(maps._grid_cache) < 100 and maps._grid_cache.nbytes <= GRID_CACHE_BYTES
    assert activations._cache.nbytes <= activations.CACHE_BYTES
    # The stated bound: both caches full, plus 64 MB for the allocator's slack.
    assert grew < GRID_CACHE_BYTES + activations.CACHE_BYTES + 64_000_000, f"grew {grew / 1e6:.0f} MB"


def test_filter_weights_and_feature_maps_show_weights_changed_in_place():
    model = cw.load_model("fashion-cnn", device="cpu")
    weights = cw.FilterWeights(model, layer="block1_conv1")
    maps = cw.FeatureMaps(model, "sneaker", layer="block1_conv1")
    before = weights.grid_png, weights.tile_png, maps.grid_png, maps.tile_png
    with torch.no_grad():
        model.module.features[0].weight.mul_(-1)
    weights.refresh()
    maps.refresh()
    after = weights.grid_png, weights.tile_png, maps.grid_png, maps.tile_png
    assert [a != b for a, b in zip(after, before)] == [True, True, True, True]
    # Back as it was: the first pictures again (drawn anew or from the cache, the same bytes).
    with torch.no_grad():
        model.module.features[0].weight.mul_(-1)
    weights.refresh()
    maps.refresh()
    assert (weights.grid_png, maps.grid_png) == (before[0], before[2])
