# Sourced by the training scripts: one evaluation, kept and not taken again (resumable).
#   score MODEL OUT "SPLIT MODE [--reworded]" [PREFIX]
# runs `wideseek train eval` of MODEL (a model directory, or --oracle) on the first $n wide + $n
# deep tasks of SPLIT under the caller's ${limits[@]}, the run in OUT/eval-SLUG (OUT/PREFIXSLUG
# with a PREFIX) and its figures in OUT/PREFIXscores-SLUG.json; SLUG (split-mode[-reworded]) is
# left in $slug. A stop mid-evaluation leaves the figures empty: the next call runs it again
# (and the evaluation resumes its own run directory).
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
