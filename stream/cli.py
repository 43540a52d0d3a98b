"""``finstream`` command line. Each subcommand imports its module lazily so that, e.g.,
``finstream stack status`` never pays for onnxruntime and ``worker`` never sees TensorFlow."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Real-time scoring engine for finance.")
stack_app = typer.Typer(no_args_is_help=True, help="Local Kafka (KRaft) + Redis on 127.0.0.1.")
app.add_typer(stack_app, name="stack")


@stack_app.command("install")
def stack_install() -> None:
    """Resolve the Kafka jars with mvn and make sure redis-server is installed."""
    from stream.stack import manager

    manager.install()


@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka and Redis where the settings point (idempotent)."""
    from stream.stack import manager

    manager.up()


@stack_app.command("down")
def stack_down() -> None:
    """Stop the processes `stack up` started (by PID)."""
    from stream.stack import manager

    manager.down()


@stack_app.command("status")
def stack_status() -> None:
    """Say what runs where."""
    from stream.stack import manager

    raise typer.Exit(manager.status())


@app.command()
def train(
    only: list[str] | None = typer.Option(
        None, "--only", help="Train only these pipelines: forecast, risk, recommend."
    ),
    out: Path = typer.Option(None, "--out", help="Model directory (default: the settings' model_dir)."),
    models_only: bool = typer.Option(
        False,
        "--models-only",
        help="The same models, manifest and defaults, without the report-only comparison models "
        "(card risk ablations and reference); needs --out elsewhere. The rebuild test's cheaper run.",
    ),
) -> None:
    """Rebuild every model, the manifest and reports/models.md from the bundled real data."""
    from training import pipeline

    pipeline.main(only=only, out=out, models_only=models_only)


@app.command()
def worker() -> None:
    """Run the Faust worker: forecasts, risk alerts and recommendations."""
    from stream import worker as w

    w.main()


# the shipped kinds; the registry has the full list (reading it here would load every Job)
KIND_HELP = "Input kind of a pipeline (stream/pipelines), e.g. ticks, transactions, user-events; others are refused, naming the known ones."
# how `replay` and `backtest` read a CSV: the same options (stream.tools.replay.rows_to_records)
MAP_OPTION = typer.Option(None, "--map", help="field=column, repeatable.")
SYMBOL_OPTION = typer.Option(None, "--symbol", help="Instrument name when the file has no symbol column.")
TS_FORMAT_OPTION = typer.Option(
    None,
    "--ts-format",
    help="strftime pattern of the ts column, e.g. %Y%m%d%H%M (UTC); default: epoch ms or ISO 8601.",
)


@app.command()
def replay(
    kind: str = typer.Option(..., "--kind", help=KIND_HELP),
    input: Path = typer.Option(..., "--input", exists=True, dir_okay=False, help="CSV file to publish."),
    map: list[str] | None = MAP_OPTION,
    symbol: str | None = SYMBOL_OPTION,
    rate: float = typer.Option(0.0, "--rate", help="Events per second (0 = as fast as possible)."),
    limit: int = typer.Option(0, "--limit", help="Publish at most this many rows (0 = all)."),
    ts_format: str | None = TS_FORMAT_OPTION,
) -> None:
    """Publish a CSV to an input topic."""
    from stream.tools import replay as r

    r.main(kind=kind, input=input, mappings=map or [], symbol=symbol, rate=rate, limit=limit, ts_format=ts_format)


@app.command()
def backtest(
    kind: str = typer.Option(..., "--kind", help=KIND_HELP),
    input: Path | None = typer.Option(
        None,
        "--input",
        exists=True,
        dir_okay=False,
        help="CSV file, as for replay (default: read the input topic itself).",
    ),
    map: list[str] | None = MAP_OPTION,
    symbol: str | None = SYMBOL_OPTION,
    out: Path = typer.Option(Path("backtest_out"), "--out", help="Directory for <topic>.jsonl outputs."),
    compare: str | None = typer.Option(
        None,
        "--compare",
        help="Output topic to diff against what the live worker published (e.g. forecasts); exit 1 on a divergence.",
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", help="Input topic partitions (default FINSTREAM_TOPIC_PARTITIONS)."
    ),
    limit: int = typer.Option(0, "--limit", help="At most this many rows (0 = all)."),
    ts_format: str | None = TS_FORMAT_OPTION,
    start: str | None = typer.Option(
        None,
        "--from",
        help="Without --input: first publish time of the input "
        "topic to read (epoch ms or ISO time, UTC; default its start).",
    ),
    until: str | None = typer.Option(None, "--until", help="Without --input: read records published before this."),
) -> None:
    """Run a CSV (or a time range of the input topic) through the live pipeline code in process, on
    in-process state; outputs to JSON lines; optionally diff them with what the live worker published."""
    from stream.tools import backtest as bt

    bt.main(
        kind=kind,
        input=input,
        mappings=map or [],
        symbol=symbol,
        out=out,
        compare_topic=compare,
        partitions=partitions,
        limit=limit,
        ts_format=ts_format,
        start=start,
        until=until,
    )


@app.command()
def score(
    model: str = typer.Option(..., "--model", help="Model name from the manifest."),
    input: Path = typer.Option(..., "--input", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", dir_okay=False),
) -> None:
    """Score a CSV through the same features and ONNX session the stream uses."""
    from stream.tools import batch_score

    batch_score.main(model=model, input=input, output=output)


@app.command()
def bench(
    out: Path = typer.Option(Path("bench_results"), "--out", help="Directory for the JSON results."),
    events: int = typer.Option(20000, "--events", help="Events per scenario."),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated scenario names or prefixes, e.g. onnx,engine."
    ),
) -> None:
    """Measure throughput, latency and memory against the real stack; writes JSON and prints a table."""
    import os

    from stream.tools import bench as b

    if only:
        os.environ["FINSTREAM_BENCH_ONLY"] = only
    b.main(out=out, events=events)


@app.command()
def demo(seconds: float = typer.Option(0, "--seconds", help="Stop after this long (0 = until Ctrl-C).")) -> None:
    """Start the stack, the worker and the bundled real-data feeds; show the live outputs."""
    from stream.tools import demo as d

    d.main(seconds=seconds)


@app.command()
def dashboard(
    port: int | None = typer.Option(None, "--port", help="Port on 127.0.0.1 (default FINSTREAM_DASHBOARD_PORT)."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Replay the output topics from the start."),
) -> None:
    """Live web page of forecasts, risk alerts, recommendations and the worker's metrics."""
    from stream.dashboard import server
    from stream.settings import get_settings

    server.main(get_settings(), port=port, from_beginning=from_beginning)


@app.command()
def pseudonym(
    ids: list[str] | None = typer.Argument(None, help="Ids to map (default: one per line on stdin)."),
) -> None:
    """Print 'id<TAB>pseudonym' for account/user ids, with FINSTREAM_REDIS_KEY_SECRET (docs/security.md)."""
    import sys

    from stream.core.pseudonyms import pseudonym as make
    from stream.settings import get_settings

    secret = get_settings().key_secret
    if secret is None:
        typer.echo("error: FINSTREAM_REDIS_KEY_SECRET is not set: ids are published as they are", err=True)
        raise typer.Exit(1)
    for raw in ids or (line.strip() for line in sys.stdin):
        if raw:
            typer.echo(f"{raw}\t{make(secret, raw)}")


@app.command()
def rebuild(
    prefix: str = typer.Option(..., "--prefix", help="Fresh FINSTREAM_REDIS_KEY_PREFIX to rebuild into."),
    start: str = typer.Option("earliest", "--from", help="earliest, epoch ms or an ISO time (UTC)."),
) -> None:
    """Rebuild Redis state from the input topics up to the worker group's committed offsets."""
    from stream.tools import rebuild as rb

    rb.main(prefix=prefix, start=start)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
