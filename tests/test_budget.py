"""The web app's cost model (colorizer/budget.py), its settings (colorizer/settings.py) and the
memory release after large work (colorizer/memory.py), without a server."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from colorizer import budget, memory
from colorizer.budget import BatchMeter, Budget, BudgetError, output_cost, working_megapixels
from colorizer.settings import Settings


def test_cost_counts_full_resolution_pixels_and_the_networks_share():
    # a 4:3 photo of 40 MP at 1024 px: the network sees 1024 x 768
    w, h = 7303, 5477
    assert working_megapixels(w, h, 1024) == pytest.approx(1024 * 768 / 1e6, rel=1e-3)
    assert output_cost(w, h, 1024) == pytest.approx(w * h / 1e6 + budget.NET_WEIGHT * 0.786, rel=1e-3)
    # a photo smaller than the working resolution is not enlarged
    assert working_megapixels(300, 200, 1024) == pytest.approx(0.06)


def test_one_40_mp_photo_fits_the_default_budget_and_eight_variations_of_it_do_not():
    b = Budget()
    assert b.check(7303, 5477, 1024) < b.request_units
    with pytest.raises(BudgetError) as info:
        b.check(7303, 5477, 1024, outputs=8, what="variations")
    msg = str(info.value)
    assert "8 x 40.0 MP at 1024 px" in msg and "limit is 200 per request" in msg
    assert "at most 3 variations" in msg  # 3 x 55.7 = 167 fits, 4 x 55.7 does not
    assert b.check(7303, 5477, 1024, outputs=3) == pytest.approx(3 * output_cost(7303, 5477, 1024))


def test_a_photo_too_big_even_alone_is_told_how_small_it_must_be():
    b = Budget(request_units=20)
    with pytest.raises(BudgetError) as info:
        b.check(4000, 3000, 1024)  # 12 + 20 x 0.786 = 27.7 units
    msg = str(info.value)
    assert "limit is 20 per request" in msg and "at most" in msg and "MP" in msg
    # following the advice works: the size it names fits
    mp = float(msg.split("at most ")[1].split(" MP")[0])
    side = (mp * 1e6 * 4 / 3) ** 0.5
    assert 19 < output_cost(int(side), int(side * 3 / 4), 1024) <= 20.1


def test_batch_meter_charges_photo_by_photo_and_names_the_one_that_does_not_fit():
    m = BatchMeter(Budget(request_units=10, batch_units=25), input_size=256)
    for i in range(2):
        m.charge(2000, 1500, f"p{i}.png")  # 3 + 20 x 0.049 = 3.98 units each
    assert m.spent == pytest.approx(2 * output_cost(2000, 1500, 256))
    with pytest.raises(BudgetError, match="big.png: .*limit is 10 per request"):
        m.charge(4000, 3000, "big.png")  # alone over the request budget
    for i in range(2, 6):
        m.charge(2000, 1500, f"p{i}.png")
    with pytest.raises(BudgetError, match=r"p6.png: not colorized, the batch's budget of 25 units is spent"):
        m.charge(2000, 1500, "p6.png")
    assert m.spent <= 25


def test_settings_come_from_the_environment_and_bad_values_fall_back_with_a_warning(caplog):
    s = Settings.from_env({"COLORIZER_MAX_REQUEST_UNITS": "50", "COLORIZER_CONCURRENCY": "3",
                           "COLORIZER_MAX_MEGAPIXELS": "12.5", "COLORIZER_APP_CACHE": "/x/y"})
    assert (s.max_request_units, s.concurrency, s.max_pixels) == (50, 3, 12_500_000)
    assert str(s.app_cache) == "/x/y"
    with caplog.at_level(logging.WARNING, logger="colorizer.settings"):
        bad = Settings.from_env({"COLORIZER_MAX_REQUEST_UNITS": "abc", "COLORIZER_CONCURRENCY": "0",
                                 "COLORIZER_MAX_UPLOAD_MB": "nan"})
    assert bad == Settings()
    text = caplog.text
    assert "COLORIZER_MAX_REQUEST_UNITS='abc' is not a number" in text
    assert "COLORIZER_CONCURRENCY='0'" in text and "COLORIZER_MAX_UPLOAD_MB='nan'" in text


def test_release_gives_freed_heap_memory_back():
    """Many mid-sized arrays (below glibc's mmap threshold, so they live in the heap) are freed:
    after release() their pages are back with the system."""
    if not memory.rss_bytes() or memory._trim is None:
        pytest.skip("needs Linux with glibc")
    memory.release(force=True)
    base = memory.rss_bytes()
    keep = []
    for i in range(3000):  # 3000 x 100 KB = 300 MB, interleaved with small survivors
        keep.append(np.ones(100 * 1024 // 8))
        keep.append(np.ones(8))
    grown = memory.rss_bytes()
    assert grown - base > 250 * 2**20
    del keep[0::2]  # the big ones go; the small ones pin the heap's top (glibc may keep the
    # pages: whether it does depends on what the process allocated before)
    assert memory.release() is True
    assert memory.rss_bytes() - base < 80 * 2**20
    assert memory.release() is False  # nothing grew since: no second trim
