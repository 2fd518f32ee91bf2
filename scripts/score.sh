# Sourced by the training scripts: one evaluation, kept and not taken again (resumable).
#   score MODEL OUT "SPLIT MODE [--reworded]" [PREFIX]
# runs `wideseek train eval` of MODEL (a model directory, or --oracle) on the first $n wide + $n
# deep tasks of SPLIT under ${limits[@]}, the run in OUT/eval-SLUG (OUT/PREFIXSLUG
# with a PREFIX) and its figures in OUT/PREFIXscores-SLUG.json; SLUG (split-mode[-reworded]) is
# left in $slug. A stop mid-evaluation leaves the figures empty: the next call runs it again
# (and the evaluation resumes its own run directory). Figures kept from an earlier call are
# reused only when taken on the same $n tasks a suite (`train eval` records its counts).
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
    if [ -s "$figures" ]; then
        same_task_counts "$figures" || exit 1
        return
    fi
    mkdir -p "$out"
    if [ "$model" = --oracle ]; then set -- --oracle; else set -- --model "$model"; fi
    wideseek train eval "$@" --split "$split" --mode "$mode" --wide "$n" --deep "$n" \
        "${limits[@]}" ${reworded:+"$reworded"} --out "$out/${prefix:-eval-}$slug" > "$figures"
}

# whether the figures FILE were taken on $n tasks of each suite it scored (files that record no
# counts are taken as they are; a split of fewer than $n tasks always differs: set N to its
# size); says why not on stderr
same_task_counts() {
    python3 - "$1" "$n" <<'EOF'
import json, sys
try:
    figures, n = json.load(open(sys.argv[1])), int(sys.argv[2])
    other = {k: v for k, v in figures.items() if k.endswith("_tasks") and v != n}
except (OSError, ValueError, AttributeError) as e:
    sys.exit(f"score.sh: {sys.argv[1]}: not a scores file of `train eval` ({e}); remove it to "
             "score again")
if other:
    counts = ", ".join(f"{k} {v}" for k, v in other.items())
    sys.exit(f"score.sh: {sys.argv[1]} holds figures over other task counts ({counts}), "
             f"not {n}: set WIDESEEK_EVAL_TASKS to match, or remove the file to score again")
EOF
}
