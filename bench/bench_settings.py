"""Settings for benchmarks: the project's settings plus bench-only views (bench/bench_urls.py)."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
