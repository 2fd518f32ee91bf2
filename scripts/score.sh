# Sourced by the training scripts: one evaluation, kept and not taken again (resumable).
#   score MODEL OUT "SPLIT MODE [--reworded]" [PREFIX]
# runs `wideseek train eval` of MODEL (a model directory, or --oracle) on the first $n wide + $n
# deep tasks of SPLIT under ${limits[@]}, the run in OUT/eval-SLUG (OUT/PREFIXSLUG
# with a PREFIX) and its figures in OUT/PREFIXscores-SLUG.json; SLUG (split-mode[-reworded]) is
# left in $slug. A stop mid-evaluation leaves the figures empty: the next call runs it again
# (and the evaluation resumes its own run directory).
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
    [ -s "$figures" ] && return
    mkdir -p "$out"
    if [ "$model" = --oracle ]; then set -- --oracle; else set -- --model "$model"; fi
    wideseek train eval "$@" --split "$split" --mode "$mode" --wide "$n" --deep "$n" \
        "${limits[@]}" ${reworded:+"$reworded"} --out "$out/${prefix:-eval-}$slug" > "$figures"
}
