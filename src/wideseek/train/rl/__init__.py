"""Multi-agent RL (issue 16): WideSeek-R1's GRPO variant on the project's own trajectories.

- samples.py: an agent's turns → one training sequence from the *stored* token ids, with a
  multi-span mask over what it generated and the sampling logprobs (never a re-rendering);
- advantages.py: one group-normalised advantage per rollout, shared by all its agents;
- loss.py: the dual-level token weights (rollouts, then agents, then tokens) and the clipped
  policy loss (clip-higher, dual-clip).
The trainer loop (rollouts through the runtime, updates on accelerate, checkpoints, collapse
guards) builds on these.
"""
