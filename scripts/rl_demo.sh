#!/usr/bin/env bash
# The RL learning demonstration (issue 27), end to end and resumable: multi-agent GRPO from the
# shipped default model (configs/rl-demo-cpu.yaml: outcome reward only, train tasks it solves
# sometimes, dev figures at steps 0, 5 and 10) for each seed, then single-agent RL from the same
# start on the same selection with the same steps, groups and limits; then the comparison
# (dev before vs after, mean ± std over seeds, gain vs the seed-to-seed spread; curves as a PNG)
# and the width sweep (1, 2, 4, 8 subagents, single agent beside them at the same token budget)
# of the start model and of the first seed's RL model.
#   bash scripts/rl_demo.sh [key=value ...]     # overrides go to every `wideseek train rl`
# WIDESEEK_RUN_DIR sets where runs go (default runs/rl-demo; on a CPU put it outside the work
# tree, e.g. ~/.cache/wideseek/rl-demo); WIDESEEK_SEEDS the seeds (default "1 2 3"). Running it
# again resumes every run from its last checkpoint and skips what is done.
# Every run trains on the same slice of tasks: the first measures the start model's pass rates,
# the others read them (select.pass_rate.measured_in). Cost: one run takes about 3 hours on 2
# CPU cores (measured step: see the config; the first run ~30 min more for the pass rates), so
# the whole demonstration (6 runs + 2 sweeps) is about 17 hours there; on a GPU point
# rollout_engine at a vLLM / SGLang server (configs/rl-remote.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${WIDESEEK_RUN_DIR:-runs/rl-demo}
seeds=${WIDESEEK_SEEDS:-"1 2 3"}
limits=(--lead-turns 4 --subagent-turns 5 --single-turns 20 --max-response-tokens 256)
first=$(set -- $seeds && echo "$1")
# the first run measures the start model's pass rates (multi-agent); every other seed and mode
# trains on that same slice instead of measuring its own
slice=$run/multi-s$first
compare=()
for mode in multi single; do
    for seed in $seeds; do
        out=$run/$mode-s$seed
        borrow=()
        [ "$out" = "$slice" ] || borrow=("select.pass_rate.measured_in=$slice")
        [ -d "$out/final" ] || wideseek train rl --config configs/rl-demo-cpu.yaml \
            "mode=$mode" "seed=$seed" "out_dir=$out" "${borrow[@]}" "$@"
        compare+=("$mode=$out/metrics.jsonl")
    done
done
python bench/rl_curve.py --compare "${compare[@]}" --plot "$run/curves.png" | tee "$run/compare.txt"
sweep=(--subagents 1,2,4,8 --suite wide --split dev --limit 8 "${limits[@]}")
[ -s "$run/sweep-start/sweep.json" ] || wideseek eval sweep "${sweep[@]}" --out "$run/sweep-start"
[ -s "$run/sweep-rl/sweep.json" ] || wideseek eval sweep "${sweep[@]}" \
    --model "$run/multi-s$first/final" --out "$run/sweep-rl"
