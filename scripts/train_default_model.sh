#!/usr/bin/env bash
# The shipped default model, end to end: oracle demonstrations in the bundled world -> BPE
# tokenizer -> random Qwen3 (tiny by default) -> copy curriculum + SFT -> dev and test scores
# (first 30 wide + 30 deep tasks, multi and single mode; the oracle's beside them) -> installed
# into the package with its model card. Every step is resumable: run it again after a stop.
# Extra arguments go to `wideseek train sft` as overrides, e.g. train.epochs=3 on a GPU, and
# WIDESEEK_SIZE picks the model size of `wideseek train init` (tiny: the shipped CPU model;
# small or base on a GPU), trained under runs/sft-<size>.
#   [WIDESEEK_SIZE=small] bash scripts/train_default_model.sh [key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${WIDESEEK_SIZE:-tiny}
run=runs/sft-$size

for suite_limit in wide:400 deep:600; do
    wideseek world oracle --suite "${suite_limit%%:*}" --split train --limit "${suite_limit##*:}"
done
for suite in wide deep; do  # held-out demonstrations for the teacher-forced probe
    wideseek world oracle --suite "$suite" --split dev --limit 40
done
[ -f runs/tok-8k/tokenizer.json ] || wideseek train tokenizer --out runs/tok-8k --vocab-size 8192
[ -f "runs/init-$size/config.json" ] || wideseek train init --tokenizer runs/tok-8k \
    --size "$size" --out "runs/init-$size"
wideseek train sft --config configs/sft-tiny.yaml "model=runs/init-$size" "out_dir=$run" "$@"

model=$run/sft/final
scores=()
for split in dev test; do
    for mode in multi single; do
        wideseek train eval --model "$model" --split "$split" --mode "$mode" --wide 30 --deep 30 \
            --out "$run/eval-$split-$mode" > "$run/scores-$split-$mode.json"
        # the oracle on the same tasks under the same limits: the figure beside the model's
        wideseek train eval --oracle --split "$split" --mode "$mode" --wide 30 --deep 30 \
            --out "$run/oracle-$split-$mode" > "$run/oracle-scores-$split-$mode.json"
        scores+=(--scores "$split $mode=$run/scores-$split-$mode.json")
        scores+=(--scores "oracle $split $mode=$run/oracle-scores-$split-$mode.json")
    done
done
wideseek train ship --model "$model" --run "$run" "${scores[@]}"
