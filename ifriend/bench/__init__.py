"""Benchmarks that compare ifriend's backends with baselines measured in the same run.

These machines are shared and noisy: figures are only ever compared side by side,
targets interleaved round by round, never against numbers from another run.
"""
