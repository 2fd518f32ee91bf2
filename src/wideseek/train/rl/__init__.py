"""Multi-agent RL (issue 16): WideSeek-R1's GRPO variant on the project's own trajectories.

- config.py: `RLConfig`, the run file's schema, and the ids of its settings (policy ids);
- task_selection.py: the task pool (ids, first N, the start model's pass-rate window) and the
  order flat groups are replaced in;
- rewards.py: one reward per rollout from weighted `(task, trajectory) -> float` terms that read
  the project's scorer, behind gates (the answer parsed, the lead finished);
- advantages.py: one group-normalised advantage per rollout, shared by all its agents;
- credit.py: which turns of a rollout train with that advantage (published, all, healthy);
- samples.py: an agent's turns → one training sequence from the *stored* token ids, with a
  multi-span mask over the trained turns and the sampling logprobs (never a re-rendering);
- logprobs.py: the policy's logprobs of a training sequence (the engine's definition) and its
  entropy, the one place the learner computes them;
- loss.py: the dual-level token weights (rollouts, then agents, then tokens) and the clipped
  policy loss (clip-higher, dual-clip);
- batch.py: a step's rollouts → rewards, advantages, samples, weights (B: the step's rollouts);
- sampling.py: a step's sampling side (which weights sample, its rollouts through the runtime,
  run folders, flat groups replaced, the pass-rate measurement), on the main process;
- update.py: one optimizer step over a step's batch, split over the learner processes;
- metrics_row.py: the metrics rows, one schema per run; collapse.py: the collapse guards and
  the rollback to the last good checkpoint; notes.py: the trainer's one-line notes.
trainer.py runs the loop (sampling, updates on accelerate, checkpoints in train/checkpoints.py's
layout, guards, dev evaluation) on these.
"""
