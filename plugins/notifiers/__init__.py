"""Built-in notifiers for the agent's heads-ups: ``smtp`` and ``webhook``."""
