"""The read API: latest values and series, each answer with its freshness."""
