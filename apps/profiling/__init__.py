"""Query profiling: the query inspector (N+1, duplicate and slow queries) and its test guard."""
