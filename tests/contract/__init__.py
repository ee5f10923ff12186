"""The contract every session backend keeps: ADK's session semantics plus ifriend's guarantees."""
