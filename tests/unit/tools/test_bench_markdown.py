"""How a target is judged over several runs: met in all, in some, or missed by the median's ratio."""

from stream.tools.bench_markdown import verdict


def test_met_in_every_run():
    assert verdict([20_100, 25_000], 20_000, at_least=True) == "met"
    assert verdict([80, 100], 100, at_least=False) == "met"


def test_missed_in_every_run_says_by_how_much_the_median_missed():
    assert verdict([10_000, 12_000, 7_500], 15_000, at_least=True) == "**missed by 1.50x** (median)"
    assert verdict([250, 200, 300], 100, at_least=False) == "**missed by 2.50x** (median)"


def test_met_in_some_runs_names_how_many_and_the_misses():
    assert verdict([21_000, 16_000], 20_000, at_least=True) == "met in 1 of 2, **missed by 1.25x** in the others"
