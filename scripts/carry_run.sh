#!/usr/bin/env bash
# A training script's run directory, carried between machines that keep nothing but git: the
# training's newest checkpoint packed small (`wideseek train pack`, into DIR/sft) and every
# evaluation made so far, finished or not (the rest of the run directory, into DIR/evals: each
# resumes where it stopped, and a finished one is not taken again, scripts/score.sh).
#   bash scripts/carry_run.sh save RUN DIR      # at the end of a session; then commit DIR
#   bash scripts/carry_run.sh restore DIR RUN   # on the next machine, before the script runs
# Restore writes nothing the run already holds (a checkpoint as new, an evaluation of that
# name): what is there locally has gone at least as far. scripts/train_default_model.sh calls
# restore itself when WIDESEEK_RESUME_FROM=DIR is set.
set -euo pipefail

usage() { echo "usage: $0 save RUN DIR | restore DIR RUN" >&2; exit 2; }
[ $# -eq 3 ] || usage

case $1 in
save)
    run=$2 dir=$3
    [ -d "$run/sft" ] || { echo "$0: $run/sft: no training to carry" >&2; exit 1; }
    wideseek train pack "$run/sft" "$dir/sft"
    # written whole into a fresh folder, then swapped in: a stop half way keeps the old one
    rm -rf "$dir/evals.tmp" && mkdir -p "$dir/evals.tmp"
    for entry in "$run"/*; do
        [ "$(basename "$entry")" = sft ] || cp -a "$entry" "$dir/evals.tmp/"
    done
    rm -rf "$dir/evals" && mv "$dir/evals.tmp" "$dir/evals"
    echo "carry_run.sh: $run carried into $dir ($(ls "$dir/evals" | wc -l) evaluation entries)"
    ;;
restore)
    dir=$2 run=$3
    [ -d "$dir/sft" ] || { echo "$0: $dir/sft: nothing carried there" >&2; exit 1; }
    wideseek train unpack "$dir/sft" "$run/sft"
    mkdir -p "$run"
    for entry in "$dir"/evals/*; do
        [ -e "$entry" ] || continue  # no evaluations carried
        name=$(basename "$entry")
        if [ -e "$run/$name" ]; then
            echo "carry_run.sh: $run/$name is there already; kept, not replaced"
        else
            cp -a "$entry" "$run/"
        fi
    done
    ;;
*) usage ;;
esac
