#!/usr/bin/env bash
# scripts/train_default_model.sh's run directory, carried between machines that keep nothing but
# git: into DIR/sft the training (while it trains, its newest checkpoint packed small by
# `wideseek train pack`; once finished, its final model and metrics exactly, so evaluations
# begun on one machine and ended on another score the same weights), and into DIR/evals every
# evaluation so far, finished or not (eval-*, oracle-*, *scores-*.json, shipped/: each resumes
# from its last finished task, and a finished one is not taken again, scripts/score.sh).
#   bash scripts/carry_run.sh save RUN DIR      # at the end of a session; then commit DIR
#   bash scripts/carry_run.sh restore DIR RUN   # on the next machine, before the script runs
# Restore writes nothing the run already holds (a checkpoint as new, a final model, an
# evaluation of that name; an empty scores file, left by an evaluation cut off, counts as
# none): on a fresh machine that is nothing. scripts/train_default_model.sh calls restore itself
# when WIDESEEK_RESUME_FROM=DIR is set.
set -euo pipefail
shopt -s nullglob

usage() { echo "usage: $0 save RUN DIR | restore DIR RUN" >&2; exit 2; }
[ $# -eq 3 ] || usage

# copy entry $1 into folder $2 through a temporary name: a stop half way leaves no half copy
copy_into() {
    local name
    name=$(basename "$1")
    rm -rf "$2/.$name.part" && cp -a "$1" "$2/.$name.part" && mv "$2/.$name.part" "$2/$name"
}

case $1 in
save)
    run=$2 dir=$3
    [ -d "$run/sft" ] || { echo "$0: $run/sft: no training to carry" >&2; exit 1; }
    rm -rf "$dir/sft.part" "$dir/evals.part"
    if [ -f "$run/sft/final/trainer_state.json" ]; then  # finished: the model as it was scored
        mkdir -p "$dir/sft.part"
        cp -a "$run/sft/final" "$run/sft/metrics.jsonl" "$dir/sft.part/"
    else
        wideseek train pack "$run/sft" "$dir/sft.part"
    fi
    mkdir -p "$dir/evals.part"
    for entry in "$run"/eval-* "$run"/oracle-* "$run"/*scores-*.json "$run"/shipped; do
        cp -a "$entry" "$dir/evals.part/"
    done
    for part in sft evals; do  # swapped in whole once both are written
        rm -rf "${dir:?}/$part" && mv "$dir/$part.part" "$dir/$part"
    done
    echo "carry_run.sh: $run carried into $dir ($(du -sh "$dir" | cut -f1);" \
        "$(ls "$dir/evals" | wc -l) evaluation entries)"
    ;;
restore)
    dir=$2 run=$3
    [ -d "$dir/sft" ] || { echo "$0: $dir/sft: nothing carried there" >&2; exit 1; }
    mkdir -p "$run/sft"
    if [ -d "$dir/sft/final" ]; then
        if [ -e "$run/sft/final" ]; then
            echo "carry_run.sh: $run/sft/final is there already; kept, not replaced"
        else
            cp -a "$dir/sft/metrics.jsonl" "$run/sft/"
            copy_into "$dir/sft/final" "$run/sft"
        fi
    else
        wideseek train unpack "$dir/sft" "$run/sft"
    fi
    for entry in "$dir"/evals/*; do
        name=$(basename "$entry")
        if [ -d "$run/$name" ] || [ -s "$run/$name" ]; then
            echo "carry_run.sh: $run/$name is there already; kept, not replaced"
        else
            copy_into "$entry" "$run"
        fi
    done
    ;;
*) usage ;;
esac
