# Benchmarks (see bench/README.md). Only a `bench` target lives here for now.
PYTHON ?= .venv/bin/python
BENCH_ARGS ?=

.PHONY: bench
bench:
	$(PYTHON) bench/compare.py $(BENCH_ARGS)
