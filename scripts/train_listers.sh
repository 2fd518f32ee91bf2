#!/usr/bin/env bash
# The lister stage of the default model, as an experiment (not shipped; measured to break the
# lead when trained from the shipped model: configs/sft-listers.yaml): stage 1's adapter
# trained further on the listing subagents' demonstrations only (configs/sft-listers.yaml says
# why: the report's stage attribution puts the shipped model's loss in its lists), then scored
# on the first N wide + N deep test tasks in the template and the held-out wordings, beside its
# start under the same limits and decoding, and paired with it task by task
# (`wideseek report A --against B`: the lists, the answers, and whether deep EM held).
#   bash scripts/train_listers.sh [key=value ...]   # overrides go to `wideseek train sft`
# WIDESEEK_START_MODEL: a stage 1 trained on the numbered lister reports of oracle-v2 (its leads
# read the lists these listers write; default: RUN/sft/final); WIDESEEK_RUN_DIR (default
# runs/sft-default) and WIDESEEK_EVAL_TASKS (default 30) as in scripts/train_default_model.sh,
# whose evaluations of the start it reuses when present. Resumable: run it again after a stop.
# Cost on 2 CPU cores: the demonstrations ~5 s; training ~45 min (1.04M tokens, 42 steps);
# each evaluation of 30 + 30 tasks ~25 min.
{
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/score.sh
run=${WIDESEEK_RUN_DIR:-runs/sft-default}
start=${WIDESEEK_START_MODEL:-$run/sft/final}
n=${WIDESEEK_EVAL_TASKS:-30}
limits=(--lead-turns 4 --subagent-turns 5 --max-response-tokens 256
        --lead-response-tokens "${WIDESEEK_LEAD_RESPONSE_TOKENS:-768}")

wideseek world oracle --suite wide --split train --limit 800
wideseek train sft --config configs/sft-listers.yaml "model=$start" "out_dir=$run/listers" "$@"

# one wording at a time, both models, so the first pairing is there before the second runs;
# the start's evaluations are train_default_model.sh's (RUN/eval-<slug>) when it made them
for spec in "test multi" "test multi --reworded"; do
    score "$run/listers/sft/final" "$run/listers" "$spec"
    score "$start" "$run" "$spec"
    wideseek report "$run/listers/eval-$slug" --against "$run/eval-$slug" --no-plots
done
exit
}
