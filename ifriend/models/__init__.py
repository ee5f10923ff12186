"""Models ifriend ships, registered with ADK's LLM registry on import.

`ifriend-echo` is a deterministic local model: offline, no key, labelled in
every answer. Any `LlmAgent(model="ifriend-echo")` resolves to it once this
package is imported (ifriend's App imports it when it builds the agent).
"""

from google.adk.models.registry import LLMRegistry

from .echo import ECHO_MODEL, EchoModel

LLMRegistry.register(EchoModel)

__all__ = ["ECHO_MODEL", "EchoModel"]
