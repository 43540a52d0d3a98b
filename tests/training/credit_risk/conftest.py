"""The folder's credit-set cache and the German credit set, loaded once for all its modules."""

from __future__ import annotations

import pytest

from training.data import credit
from training.quality import QualityLog


@pytest.fixture(scope="package")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="package")
def german(cache):
    return credit.load("german", cache, QualityLog())
