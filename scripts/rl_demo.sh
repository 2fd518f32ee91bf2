#!/usr/bin/env bash
# The RL learning demonstration (issue 27), resumable, in parts that each fit a working session
# on 2 CPU cores: multi-agent GRPO from a start model (configs/rl-demo-cpu.yaml:
# outcome reward only, train tasks it solves sometimes, dev figures before and after) for each
# seed, then single-agent RL from the same start on the same slice of tasks with the same steps,
# groups and limits; then the comparison (dev before vs after, mean ± std over seeds, gain vs
# the seed-to-seed spread; curves as a PNG) and the width sweep (1, 2, 4, 8 subagents, single
# agent beside them at the same token budget) of the start model and of the first RL model.
#   bash scripts/rl_demo.sh [key=value ...]               # all of it, in order
#   bash scripts/rl_demo.sh prepare [key=value ...]       # the slice: pass rates (~1 h)
#   bash scripts/rl_demo.sh arm MODE SEED [key=value ...] # one arm, e.g. `arm multi 1` (~1.7 h)
#   bash scripts/rl_demo.sh compare                       # the arms run so far, compared
#   bash scripts/rl_demo.sh keep [DEST]                   # their small files, to commit
#   bash scripts/rl_demo.sh sweep                         # the width sweeps (~1 h each)
# Overrides go to `wideseek train rl`. WIDESEEK_RL_START: the start model of every part (default
# the shipped one, src/wideseek/assets/model; its wideseek.json limits are the runs' limits).
# WIDESEEK_RUN_DIR: where runs go (default runs/rl-demo;
# on a CPU put it outside the work tree, e.g. ~/.cache/wideseek/rl-demo); WIDESEEK_SEEDS: the
# seeds of `all` (default "1 2 3"); WIDESEEK_RL_PREPARED: the preparation the arms borrow
# (default $WIDESEEK_RUN_DIR/prepare; a directory holding its pass-rates.json is enough, so a
# measurement kept in the repository serves any checkout: it is checked by the weights' digest
# and the world's hash).
# Running a part again resumes it from its last checkpoint and skips what is done (an arm
# under other overrides, e.g. another lr, needs its own WIDESEEK_RUN_DIR and preparation).
# The preparation is a run of 0 steps: it measures the start model's pass rates over the first
# 16 + 16 train tasks (4 rollouts each) and its dev figures, and trains nothing; every arm trains
# on that slice (select.pass_rate.measured_in). Cost on 2 CPU cores: the preparation of the
# model shipped on 2026-12-07 took 80 min with rollouts on llama.cpp (results/rl-demo/README.md);
# an arm of 6 steps with two dev evaluations ~1.7 h (measured on the model before it, torch
# rollouts), and the whole demonstration (6 arms + 2 sweeps + the preparation) ~13 h; on a GPU point
# rollout_engine at a vLLM / SGLang server (configs/rl-remote.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${WIDESEEK_RUN_DIR:-runs/rl-demo}
prepared=${WIDESEEK_RL_PREPARED:-$run/prepare}
seeds=${WIDESEEK_SEEDS:-"1 2 3"}
start=${WIDESEEK_RL_START:-src/wideseek/assets/model}
limits=(--single-turns 20)  # the rest: the model's own (configs/rl-demo-cpu.yaml)

prepare() {
    [ -s "$prepared/pass-rates.json" ] || wideseek train rl --config configs/rl-demo-cpu.yaml \
        "model=$start" "out_dir=$prepared" "$@" steps=0
}

arm() {  # MODE SEED [key=value ...]
    local mode=$1 seed=$2 out=$run/$1-s$2
    shift 2
    [ -s "$prepared/pass-rates.json" ] || {
        echo "rl_demo.sh: no preparation in $prepared: run 'bash scripts/rl_demo.sh prepare'" >&2
        exit 2
    }
    if [ -d "$out/final" ]; then
        echo "rl_demo.sh: $out is done (its final model is there): skipped" >&2
        return
    fi
    # the start model's dev evaluation in this mode, made by another seed or by the preparation:
    # taken, not redone (the trainer checks it was of the same weights and settings, and
    # evaluates afresh where it was not)
    local taken=()
    for stamp in "$run/$mode"-s*/dev-eval/step-0/policy.json \
            "$prepared/dev-eval/step-0/policy.json"; do
        [ "$stamp" != "$out/dev-eval/step-0/policy.json" ] && grep -q '"start"' "$stamp" \
            2> /dev/null && { taken=("eval_start_in=${stamp%/dev-eval/step-0/policy.json}"); break; }
    done
    # evaluated in the mode it trains in: the single agent's gain is the single agent's
    wideseek train rl --config configs/rl-demo-cpu.yaml "model=$start" "mode=$mode" \
        "eval.mode=$mode" "seed=$seed" "out_dir=$out" "select.pass_rate.measured_in=$prepared" \
        ${taken[@]+"${taken[@]}"} "$@"
}

compare() {
    local runs=()
    for metrics in "$run"/multi-s*/metrics.jsonl "$run"/single-s*/metrics.jsonl; do
        [ -s "$metrics" ] || continue
        local name=${metrics#"$run"/}
        runs+=("${name%%-s*}=$metrics")
    done
    [ ${#runs[@]} -gt 0 ] || { echo "rl_demo.sh: no arm has run yet in $run" >&2; exit 2; }
    {
        python bench/rl_curve.py --compare "${runs[@]}" --plot "$run/curves.png"
        # each arm's last dev evaluation against its first, task by task, with the interval
        # that 8 + 8 dev tasks allow (the noise of the dev set, beside the seeds' spread)
        for arm in "$run"/multi-s* "$run"/single-s*; do
            local evals=("$arm"/dev-eval/step-*)
            [ -d "$arm/dev-eval/step-0" ] && [ ${#evals[@]} -gt 1 ] || continue
            local last
            last=$(printf '%s\n' "${evals[@]}" | sort -V | tail -n 1)
            echo
            echo "## ${arm#"$run"/}: $(basename "$last") against step-0"
            wideseek report "$last" --against "$arm/dev-eval/step-0" --no-plots
        done
    } | tee "$run/compare.txt"
}

keep() {  # DEST: the small files of the preparation and of every arm, to commit
    local dest=${1:-results/rl-demo}
    for dir in "$run"/prepare "$run"/multi-s* "$run"/single-s*; do
        [ -s "$dir/metrics.jsonl" ] || continue
        local name=${dir#"$run"/}
        mkdir -p "$dest/$name"
        cp "$dir/metrics.jsonl" "$dest/$name/"
        [ -s "$dir/pass-rates.json" ] && cp "$dir/pass-rates.json" "$dest/$name/"
        for scored in "$dir"/dev-eval/step-*/*/results.jsonl; do
            [ -s "$scored" ] || continue
            local part=${scored#"$dir"/}
            mkdir -p "$dest/$name/$(dirname "$part")"
            cp "$scored" "$(dirname "$scored")/run.json" "$dest/$name/$(dirname "$part")/"
            # the preparation's start evaluation whole (its format figures are read from the
            # trajectories, 1.4 MB): the arms' copies of it would repeat it
            [ "$name" = prepare ] && [[ $part == dev-eval/step-0/* ]] && \
                cp "$(dirname "$scored")/trajectories.jsonl" "$dest/$name/$(dirname "$part")/"
            # the stamp of the weights and settings that made it: an arm borrowing the kept
            # preparation takes its start evaluation instead of running it again
            local stamp
            stamp=$(dirname "$(dirname "$scored")")/policy.json
            [ -s "$stamp" ] && cp "$stamp" "$dest/$name/$(dirname "$(dirname "$part")")/"
        done
    done
    echo "rl_demo.sh: kept in $dest"
}

sweep() {
    local first
    first=$(set -- $seeds && echo "$1")
    local sweep=(--subagents 1,2,4,8 --suite wide --split dev --limit 8 "${limits[@]}")
    [ -s "$run/sweep-start/sweep.json" ] || wideseek eval sweep "${sweep[@]}" \
        --model "$start" --out "$run/sweep-start"
    [ -s "$run/sweep-rl/sweep.json" ] || wideseek eval sweep "${sweep[@]}" \
        --model "$run/multi-s$first/final" --out "$run/sweep-rl"
}

# One block, read whole before it runs (ending in exit): an edit of this file while a part runs
# cannot change what the running shell reads next.
{
case ${1:-all} in
    prepare) shift; prepare "$@" ;;
    arm) shift; [ $# -ge 2 ] || { echo "usage: rl_demo.sh arm MODE SEED [key=value ...]" >&2
         exit 2; }; arm "$@" ;;
    compare) compare ;;
    keep) shift; keep "$@" ;;
    sweep) sweep ;;
    *)
        [ "${1:-}" = all ] && shift
        prepare "$@"
        for mode in multi single; do
            for seed in $seeds; do arm "$mode" "$seed" "$@"; done
        done
        compare
        sweep
        ;;
esac
exit
}
