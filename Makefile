# From a fresh clone, `make test` and `make demo` do all the set-up themselves:
# .venv + editable install (skipped while up to date), Kafka jars via mvn, redis-server via apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint soak bench-scaleout demo install stack-install stack-up stack-down stack-status clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e '.[train,test]'
	touch $(STAMP)

install: $(STAMP)

stack-install: $(STAMP)
	$(BIN)/finstream stack install

# Lint and type checks first (configured in pyproject.toml): seconds, and they fail fast.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint stack-install
	$(BIN)/pytest

# The full soak (issue 7): 100,000 mixed events, 6 SIGKILLs at random points; `make test` runs a short one.
soak: stack-install
	SOAK_EVENTS=100000 SOAK_KILLS=6 SOAK_BATCH_MAX=500 $(BIN)/pytest -q -s tests/stress/test_soak.py

# Scale-out (issue 14): 1 vs 2 workers on 8 partitions, one Redis vs a 3-node Redis Cluster (docs/scaling.md).
bench-scaleout: stack-install
	$(BIN)/python -m stream.tools.bench_scaleout --events 20000 --jobs risk,forecast

demo: stack-install
	$(BIN)/python -m training.data.fraud
	$(BIN)/finstream demo

stack-up: stack-install
	$(BIN)/finstream stack up

stack-down: $(STAMP)
	$(BIN)/finstream stack down

stack-status: $(STAMP)
	$(BIN)/finstream stack status

clean: stack-down
	rm -rf $(VENV) *.egg-info .pytest_cache
