"""Benchmarks: each module `bench_<name>.py` exposes `run() -> list[str]`.

Every line is `name: value unit (ratio vs baseline)`, with the baseline measured
in the same run on the same machine, so the ratio is what to compare.
"""
