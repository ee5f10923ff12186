"""Viewing telemetry: `ifriend traces` reads the JSON-lines trace files and reports latency.

Apart from recording (`ifriend.telemetry`): the App, the stores and the plugins never
import it; only the command line does (a test checks both).
"""
