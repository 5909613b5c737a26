"""Building blocks of the benchmark suite: servers, processes, load, statistics, reports."""
