#!/usr/bin/env bash
# Stage 2 of the default model, as an experiment (not shipped): the single agent and people's
# wordings, trained on from a stage-1 model (configs/sft-stage2.yaml: single-agent, lead and
# subagent demonstrations in mixed wordings), then scored on the first N wide + N deep test tasks
# in held-out wordings, in the plain test wording and single-agent, beside the start model under
# the same limits and decoding (`train eval`: greedy, each request decoded as if alone), so the
# two compare task by task. It ships nothing: `wideseek train ship --model RUN/single/sft/final
# --run RUN --trained-from START ...` does, once the figures say so.
#   bash scripts/train_stage2.sh [key=value ...]   # overrides go to `wideseek train sft`
# WIDESEEK_START_MODEL: the stage-1 model (default: the package's, src/wideseek/assets/model);
# WIDESEEK_RUN_DIR (default runs/sft-default) and WIDESEEK_EVAL_TASKS (default 20) as in
# scripts/train_default_model.sh. Both models are scored under the limits of
# scripts/score.sh; the start's scores go to RUN/start, or to RUN itself when the start is
# RUN/sft/final (scripts/train_default_model.sh's evaluations of it are reused: set the same
# WIDESEEK_EVAL_TASKS). Resumable: run it again after a stop.
# Cost, measured on 2 idle CPU cores: the demonstrations ~1 min a run; training 63 min (904,534
# tokens, 36 steps); each evaluation 12-20 min, about 1.5 h for all six.
# The whole script is read before it runs ({ ...; exit; }): editing it under a run is safe.
{
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/score.sh
run=${WIDESEEK_RUN_DIR:-runs/sft-default}
start=${WIDESEEK_START_MODEL:-src/wideseek/assets/model}
start_out=$(start_scores "$start" "$run")
n=${WIDESEEK_EVAL_TASKS:-20}

for suite_limit in wide:800 deep:1000; do
    for mode in single multi; do
        wideseek world oracle --suite "${suite_limit%%:*}" --split train \
            --limit "${suite_limit##*:}" --mode "$mode" --wordings mixed
    done
done
wideseek train sft --config configs/sft-stage2.yaml "model=$start" "out_dir=$run/single" "$@"

for spec in "$run/single/sft/final $run/single" "$start $start_out"; do
    read -r model out <<< "$spec"
    for evaluation in "test multi --reworded" "test multi" "test single"; do
        score "$model" "$out" "$evaluation"
    done
done
# task by task, stage 2 (A) against its start (B): means, better / worse / equal, and the 95%
# interval of the difference (what 20 tasks' noise allows)
for slug in test-multi-reworded test-multi test-single; do
    wideseek report "$run/single/eval-$slug" --against "$start_out/eval-$slug" --no-plots
done
exit
}
