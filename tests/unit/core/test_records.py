"""Output records: ``enveloped`` (a job builds the envelope into its own dict) gives exactly the
record ``output`` gives, key and value bytes included."""

from stream.core.contracts import SCHEMA_VERSION
from stream.core.records import SourceRecord, enveloped, output


def test_enveloped_equals_output_byte_for_byte():
    body = {"symbol": "SPX", "ts": 1_704_067_200_000, "bar": {"close": 101.5, "count": 3}, "band_95": [-0.01, 0.02]}
    for src in (
        SourceRecord("ticks", 0, 0, b"SPX", b"{}"),
        SourceRecord("ticks-é", 11, 123_456_789_012, None, None),  # a non-ASCII topic name, a long offset
    ):
        want = output("forecasts", src, body)
        got = enveloped("forecasts", src, {"v": SCHEMA_VERSION, **body, "source": src.source()})
        assert got == want
        assert got.key == src.source_id.encode() and got.partition == src.partition
