"""What an operator watches of matching, besides every service's own metrics (citypair_shared.metrics)."""

from prometheus_client import Gauge, Histogram

# Each replica's own index: replicas that differ for long are a follower falling behind.
INDEX_CITIES = Gauge("matching_index_cities", "Cities in this replica's in-memory index")
RANKING_SECONDS = Histogram(
    "matching_ranking_seconds",
    "Time to rank one city's partner suggestions",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
