"""The agent of the ADK-server tests: one echo agent on the deterministic `ifriend-echo` model."""

AGENT = "echo_agent"
AGENT_PY = f"""\
from google.adk.agents.llm_agent import LlmAgent

root_agent = LlmAgent(name={AGENT!r}, model="ifriend-echo", instruction="Answer briefly.")
"""
