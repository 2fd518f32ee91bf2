"""wideseek: broad information seeking with a lead agent and parallel subagents."""

__version__ = "0.1.0"
