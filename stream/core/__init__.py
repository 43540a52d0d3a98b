"""The pure core: contracts, features, time bars, scoring plans, reason codes, alert rules.

Nothing in this package imports Kafka, Redis, Faust or TensorFlow; it is tested directly.
"""
