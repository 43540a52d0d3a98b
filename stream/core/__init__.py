"""The pure core: contracts, features, windows, scoring plans, reason codes, alert rules.

Nothing in this package imports Kafka, Redis, Faust or TensorFlow; it is tested directly.
"""
