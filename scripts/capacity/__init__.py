"""Ingest cost of the stack's native Prometheus and collector, measured on this machine (docs/capacity.md).

Prometheus: the real binary at the .env version, with docker-compose.yml's flags and prometheus/prometheus.yml's
`global` and `storage` blocks (scrape interval, external labels, out-of-order window), scraping synthetic
targets served on 127.0.0.1 (targets.py). For each series count: samples/s ingested, CPU (the process's
utime+stime from /proc), samples per CPU-second, resident memory and Go heap. Then a compression run: the
same targets scraped every second until every series has a full 120-sample chunk, the head written out as a
real TSDB block (the admin API's snapshot) and its bytes divided by the samples in it (prometheus_bench.py).

Collector: the real otelcol built from otelcol/builder-config.yaml, with otelcol/config.yaml's traces and
logs pipelines and exporters pointed at a counting stand-in sink, fed OTLP/HTTP protobuf at a fixed rate
(collector_bench.py, payloads.py, load.py). CPU is the collector's own, less its idle CPU; its own metrics
give the spans and records the memory limiter refused and the traces tail_sampling dropped undecided.

Run it as `.venv/bin/python -m scripts.bench_capacity` from the repository root (cli.py has the flags)."""
