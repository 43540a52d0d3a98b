"""ticks -> forecasts: where a tick becomes a forecast.

Each tick (keyed by symbol) is checked at the edge (``stream.core.contracts.parse_tick``) and
folded into the symbol's time bars (``stream.core.bars``, fenced state ``bar`` per symbol). When
a bar of the symbol's interval closes, its last W+1 closes go to the forecaster trained at that
interval (slot ``forecast@<interval>`` in the manifest, ``forecast`` for daily bars) and one
forecast goes to ``forecasts``: ``stream.serving.forecasting.ForecastJob``. Models come from
``training/forecast.py``.
"""

from stream.core.contracts import parse_tick
from stream.pipelines.base import InputContract, Pipeline
from stream.serving.forecasting import ForecastJob

PIPELINE = Pipeline(
    name="forecast",
    order=10,
    input=InputContract(
        kind="ticks",
        parse=parse_tick,
        key="symbol",
        fields=("symbol", "ts", "price", "bid", "ask", "volume", "event_id"),
        numeric=("price", "bid", "ask", "volume"),
    ),
    input_topic="ticks",
    state=("bar",),
    served_tasks=frozenset({"forecast"}),
    trained_tasks=frozenset({"forecast"}),  # closed bars -> next-bar return and volatility
    outputs=("forecasts",),
    job=ForecastJob,
    trainer="training.forecast",
    load="stream.tools.synthetic.ticks",
)
