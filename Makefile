# Benchmarks (see bench/README.md). Only a `bench` target lives here for now: the OCR comparison (bench/ocr/).
PYTHON ?= .venv/bin/python
BENCH_ARGS ?=

.PHONY: bench
bench:
	$(PYTHON) bench/ocr/compare.py $(BENCH_ARGS)
