"""`tune_gc`: what `ifriend run` does to the garbage collector once the App is up."""

from __future__ import annotations

import gc

from ifriend.gc_tuning import THRESHOLDS, tune_gc


def test_tuning_freezes_what_is_alive_and_raises_the_thresholds() -> None:
    alive = [object(), {"a": [1, 2]}]
    tune_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert alive  # held across the freeze


def test_without_freezing_only_the_thresholds_change() -> None:
    gc.unfreeze()
    tune_gc(freeze=False)
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() == 0
