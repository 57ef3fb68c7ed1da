"""`make bench`: real daemons on loopback, measured; figures in docs/benchmarks.md and .json (see there)."""
