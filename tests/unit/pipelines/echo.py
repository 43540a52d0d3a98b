"""A fourth pipeline for the registry tests (``echo``): its own topics, contract, state kind,
model slot, task and bench load, declared the way ``stream/pipelines/<name>.py`` declares one, so
the tests can register it and check that everything listing the use cases picks it up."""

from __future__ import annotations

import orjson

from stream import pipelines
from stream.core.contracts import parse_user_event
from stream.core.records import OutputRecord, SourceRecord, output
from stream.serving.base import Job


class EchoJob(Job):
    """A do-nothing use case: each valid event comes back on ``echo-out``."""

    slot = "echo"

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, parse_user_event)
        return out + [output(self.settings.topic_echo_out, rec, {"user_id": e.user_id}) for rec, e in events]


def load_records(n: int, seed: int = 7, spread: int | None = None) -> list[tuple[bytes, bytes]]:
    """The echo pipeline's bench load (``Pipeline.load`` names this module)."""
    return [
        (
            f"u{i}".encode(),
            orjson.dumps(
                {"v": 1, "user_id": f"u{i}", "ts": 1_700_000_000_000 + i, "product_id": "p", "action": "view"}
            ),
        )
        for i in range(seed, seed + n)
    ]


ECHO = pipelines.Pipeline(
    name="echo",
    order=40,
    input=pipelines.InputContract(
        kind="echo-events",
        parse=parse_user_event,
        key="user_id",
        fields=("user_id", "ts", "product_id", "action"),
        numeric=(),
    ),
    input_topic="echo",
    state=("echo",),
    served_tasks=frozenset({"recommend"}),
    trained_tasks=frozenset({"recommend", "echo_score"}),
    outputs=("echo-out", "echo-side"),
    job=EchoJob,
    trainer="training.echo_does_not_exist",
    load=__name__,
)
