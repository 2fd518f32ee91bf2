# Sourced by the training scripts: one evaluation, kept and not taken again (resumable).
#   score MODEL OUT "SPLIT MODE [--reworded]" [PREFIX]
# runs `wideseek train eval` of MODEL (a model directory, or --oracle) on the first $n wide + $n
# deep tasks of SPLIT under ${limits[@]}, the run in OUT/eval-SLUG (OUT/PREFIXSLUG
# with a PREFIX) and its figures in OUT/PREFIXscores-SLUG.json; SLUG (split-mode[-reworded]) is
# left in $slug. A stop mid-evaluation leaves the figures empty: the next call runs it again
# (and the evaluation resumes its own run directory). Figures kept from an earlier call are
# reused only when taken on the same $n tasks a suite and under the same limits (`train eval`
# records both), and a model's only when decoded by the same engine (WIDESEEK_EVAL_ENGINE: torch,
# the default, or llama.cpp, ~3x faster on a CPU without bf16 units; `train eval` records it).
#   start_scores START RUN
# where a later stage's start model is scored: RUN itself when START is RUN/sft/final (the
# evaluations scripts/train_default_model.sh made of it, same tasks and limits, are reused),
# else RUN/start.

# The limits every training script scores under, a model and its start alike (lead 4 turns,
# subagents 5, 256 tokens a response; the answer's writer 768, WIDESEEK_LEAD_RESPONSE_TOKENS):
# they keep a 2-core CPU evaluation to minutes a task.
limits=(--lead-turns 4 --subagent-turns 5 --max-response-tokens 256
        --lead-response-tokens "${WIDESEEK_LEAD_RESPONSE_TOKENS:-768}")

start_scores() {
    if [ "$1" -ef "$2/sft/final" ]; then echo "$2"; else echo "$2/start"; fi
}

score() {
    local model=$1 out=$2 prefix=${4:-} split mode reworded
    read -r split mode reworded <<< "$3"
    slug=$split-$mode${reworded:+-reworded}
    local figures=$out/${prefix}scores-$slug.json
    local engine=${WIDESEEK_EVAL_ENGINE:-torch}
    if [ "$model" = --oracle ]; then  # the oracle decodes nothing: no engine
        set -- --oracle
        engine=
    else
        set -- --model "$model"
    fi
    if [ -s "$figures" ]; then
        kept_figures_match "$figures" "$engine" || exit 1
        return
    fi
    mkdir -p "$out"
    wideseek train eval "$@" --split "$split" --mode "$mode" --wide "$n" --deep "$n" \
        "${limits[@]}" ${reworded:+"$reworded"} ${engine:+--engine "$engine"} \
        --out "$out/${prefix:-eval-}$slug" > "$figures"
}

# whether the figures FILE were taken as this call would take them: on $n tasks of each suite it
# scored, under ${limits[@]} (files that record neither are taken as they are; a split of fewer
# than $n tasks always differs: set N to its size), by ENGINE (a model's; a file recording none
# was torch's); says why not on stderr, in one line. Found here rather than by `train ship`,
# hours of scoring later.
#   kept_figures_match FILE ENGINE
kept_figures_match() {
    python3 - "$1" "$n" "$2" "${limits[@]}" <<'EOF'
import json, sys
file, n, engine, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
wanted = {flag.removeprefix("--").replace("-", "_"): int(value)
          for flag, value in zip(flags[::2], flags[1::2])}
try:
    figures = json.load(open(file))
    other = [f"{k} {v}" for k, v in figures.items() if k.endswith("_tasks") and v != n]
    taken = figures.get("limits") or {}
    other += [f"{k} {taken[k]}" for k in wanted.keys() & taken.keys() if taken[k] != wanted[k]]
    decoded = figures.get("engine", "torch")
    if engine and decoded != engine:
        other.append(f"engine {decoded}")
except (OSError, ValueError, AttributeError, TypeError) as e:
    sys.exit(f"score.sh: {file}: not a scores file of `train eval` ({e}); remove it to "
             "score again")
if other:
    now = ", ".join(f"{k} {v}" for k, v in {"tasks": n, **wanted}.items())
    now += f", engine {engine}" if engine else ""
    sys.exit(f"score.sh: {file} holds figures taken otherwise ({', '.join(sorted(other))}; now "
             f"{now}): set WIDESEEK_EVAL_TASKS / WIDESEEK_EVAL_ENGINE / the limits to match, or "
             "remove the file to score again")
EOF
}
