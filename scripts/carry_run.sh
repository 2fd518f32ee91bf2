#!/usr/bin/env bash
# scripts/train_default_model.sh's run directory, carried between machines that keep nothing but
# git: into DIR/sft the training (while it trains, its newest checkpoint packed small by
# `wideseek train pack`; once finished, its final model and metrics exactly, so evaluations
# begun on one machine and ended on another score the same weights), and into DIR/evals every
# evaluation so far, finished or not (eval-*, oracle-*, *scores-*.json, shipped/: each resumes
# from its last finished task, and a finished one is not taken again, scripts/score.sh).
#   bash scripts/carry_run.sh save RUN DIR      # at the end of a session; then commit DIR
#   bash scripts/carry_run.sh restore DIR RUN   # on the next machine, before the script runs
# Restore keeps what the run holds that has gone as far: a checkpoint as new, a final model, a
# finished evaluation; a carried evaluation that finished replaces one cut off here (its
# figures file empty), folder and figures together; of two cut off, the run's own is kept. On a
# fresh machine the run holds nothing. scripts/train_default_model.sh calls restore itself when
# WIDESEEK_RESUME_FROM=DIR is set.
set -euo pipefail
shopt -s nullglob

usage() { echo "usage: $0 save RUN DIR | restore DIR RUN" >&2; exit 2; }
[ $# -eq 3 ] || usage

# copy entry $1 into folder $2 through a temporary name: a stop half way leaves no half copy
copy_into() {
    local name
    name=$(basename "$1")
    rm -rf "$2/.$name.part" && cp -a "$1" "$2/.$name.part"
    rm -rf "${2:?}/$name" && mv "$2/.$name.part" "$2/$name"
}

# the evaluations of folder $1 into folder $2 (score.sh's layout: PREFIXscores-SLUG.json beside
# its run folder eval-SLUG, or PREFIXSLUG with a PREFIX; shipped/ holds the same again)
restore_evals() {
    local src=$1 dst=$2 figures name slug prefix folder entry
    mkdir -p "$dst"
    for figures in "$src"/*scores-*.json; do
        name=$(basename "$figures")
        prefix=${name%%scores-*} slug=${name#*scores-} && slug=${slug%.json}
        folder=${prefix:-eval-}$slug
        if [ -s "$dst/$name" ]; then
            echo "carry_run.sh: $dst/$name is finished here already; kept"
        elif [ -s "$figures" ] || [ ! -e "$dst/$folder" ]; then  # finished there, or none here
            if [ -e "$src/$folder" ]; then copy_into "$src/$folder" "$dst"; fi
            copy_into "$figures" "$dst"  # last: a stop before it leaves the evaluation to resume
        else
            echo "carry_run.sh: $dst/$folder is cut off here as there; this one kept"
        fi
    done
    for entry in "$src"/eval-* "$src"/oracle-*; do  # run folders without a figures file
        [ -d "$entry" ] && [ ! -e "$dst/$(basename "$entry")" ] || continue
        copy_into "$entry" "$dst"
    done
    if [ -d "$src/shipped" ]; then restore_evals "$src/shipped" "$dst/shipped"; fi
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
        [ -e "$entry" ] || continue  # shipped/ is there only once the shipped model is scored
        cp -a "$entry" "$dir/evals.part/"
    done
    # the old folders aside, the new ones in, the old ones gone: a stop leaves all of one
    # carry or the other's (and git holds the one committed)
    for part in sft evals; do
        rm -rf "$dir/$part.old"
        if [ -e "$dir/$part" ]; then mv "$dir/$part" "$dir/$part.old"; fi
    done
    mv "$dir/sft.part" "$dir/sft" && mv "$dir/evals.part" "$dir/evals"
    rm -rf "$dir/sft.old" "$dir/evals.old"
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
        else  # a finished training: its curve replaces an unfinished one's with it
            copy_into "$dir/sft/metrics.jsonl" "$run/sft"
            copy_into "$dir/sft/final" "$run/sft"
        fi
    else
        wideseek train unpack "$dir/sft" "$run/sft"
    fi
    if [ -d "$dir/evals" ]; then restore_evals "$dir/evals" "$run"; fi
    ;;
*) usage ;;
esac
