"""Real training data from installed packages (never downloaded), cached as Parquet."""
