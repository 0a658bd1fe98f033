"""Drawing a template's requested and used histograms as SVG bars."""

from __future__ import annotations

from herdsman.server.gui.resources import HEIGHT, MARGIN, chart
from herdsman.server.queries.resources import Histogram


def test_bars_scale_to_the_tallest_bin_and_ticks_stay_inside() -> None:
    histogram = Histogram(
        edges=(0.0, 1.0, 2.0, 3.0, 4.0), requested=(0, 0, 0, 4), used=(2, 1, 1, 0)
    )
    drawn = chart(histogram, "seconds")
    assert drawn.tallest == 4
    by_series = {
        series: [bar.count for bar in drawn.bars if bar.series == series]
        for series in ("requested", "used")
    }
    assert by_series == {"requested": [0, 0, 0, 4], "used": [2, 1, 1, 0]}
    tallest = next(bar for bar in drawn.bars if bar.count == 4)
    assert tallest.height == HEIGHT - MARGIN and tallest.y == 0
    labels = [(label, anchor) for _, label, anchor in drawn.ticks]
    assert labels[0] == ("0 s", "start") and labels[-1] == ("4 s", "end")


def test_memory_ticks_are_in_binary_units() -> None:
    histogram = Histogram(edges=(0.0, 2.0 * 1024**3), requested=(1,), used=(1,))
    assert [label for _, label, _ in chart(histogram, "bytes").ticks] == ["0 B", "2.0 GiB"]
