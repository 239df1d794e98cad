#!/bin/bash
# Queue the fusion study on Slurm: one array task per run, then the collect job once every
# task has ended (afterany: the collect names runs that failed instead of never starting).
#   DATA=/shared/data/default OUT=/shared/runs/fusion PRESET=full deploy/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${CILP:=cilp}"
: "${DATA:?set DATA to the dataset on the shared file system}"
: "${OUT:?set OUT to the study folder on the shared file system}"
: "${PRESET:=full}"
export CILP DATA OUT PRESET
mkdir -p logs

tasks="$("$CILP" fusion --data "$DATA" --out "$OUT" --preset "$PRESET" --plan | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"])')"
array="$(sbatch --parsable --array="0-$((tasks - 1))" "$here/fusion.sbatch")"
collect="$(sbatch --parsable --dependency="afterany:${array}" "$here/collect.sbatch")"
echo "fusion: ${tasks} tasks in array job ${array}; collect job ${collect} runs after them"
