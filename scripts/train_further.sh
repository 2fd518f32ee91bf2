#!/usr/bin/env bash
# A later stage of the default model, as an experiment (it ships nothing): a trained model
# trained further on the run file CONFIG's selection of demonstrations, then scored on the
# first N wide + N deep test tasks in the template and the held-out wordings, beside its start
# under the same limits and decoding, and paired with it task by task (`wideseek report A
# --against B`: the lists, the answers, whether deep EM held).
#   bash scripts/train_further.sh CONFIG [key=value ...]   # overrides go to `wideseek train sft`
#   bash scripts/train_further.sh configs/sft-refresh.yaml   # the shipped model on new pages
#   WIDESEEK_START_MODEL=runs/sft-default/sft/final bash scripts/train_further.sh \
#       configs/sft-listers.yaml                            # the listers alone (breaks the lead)
# The stage trains into RUN/STAGE (STAGE: CONFIG's name without "sft-"). WIDESEEK_START_MODEL:
# the model trained further (default: the shipped one, src/wideseek/assets/model); its scores
# go to RUN/start, or to RUN itself when the start is RUN/sft/final, so that
# scripts/train_default_model.sh's evaluations of it are reused. WIDESEEK_RUN_DIR (default
# runs/sft-default) and WIDESEEK_EVAL_TASKS (default 30) as in scripts/train_default_model.sh.
# Resumable: run it again after a stop. Cost on 2 CPU cores: the demonstrations ~1 min; ~2 min
# a training step of ~25k tokens (`wideseek train sft --config CONFIG --plan` counts them);
# each evaluation of 30 + 30 tasks ~25 min.
{
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/score.sh
config=${1:?usage: scripts/train_further.sh CONFIG [key=value ...]}
shift
stage=$(basename "$config" .yaml)
stage=${stage#sft-}
run=${WIDESEEK_RUN_DIR:-runs/sft-default}
start=${WIDESEEK_START_MODEL:-src/wideseek/assets/model}
start_out=$(start_scores "$start" "$run")
n=${WIDESEEK_EVAL_TASKS:-30}

wideseek world oracle --suite wide --split train --limit 800
wideseek world oracle --suite deep --split train --limit 1000
wideseek train sft --config "$config" "model=$start" "out_dir=$run/$stage" "$@"

# one wording at a time, both models, so the first pairing is there before the second runs
for spec in "test multi" "test multi --reworded"; do
    score "$run/$stage/sft/final" "$run/$stage" "$spec"
    score "$start" "$start_out" "$spec"
    wideseek report "$run/$stage/eval-$slug" --against "$start_out/eval-$slug" --no-plots
done
exit
}
