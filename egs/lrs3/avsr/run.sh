#!/usr/bin/env bash
# AVSR on LRS3. Corpus paths: db.sh; data preparation (stage 1): local/data.sh;
# job back-end: cmd.sh; stages and options: ../../TEMPLATE/avsr/avsr.sh --help. Run from this folder,
# e.g. ./run.sh --stage 1 --stop_stage 2 --nj 16 --local_data_opts "--max_seconds 12"
set -euo pipefail
[ -f ./db.sh ] || { echo "run.sh: run me from my own folder, egs/lrs3/avsr" >&2; exit 1; }
. ./path.sh
. ./cmd.sh
. ./db.sh

../../TEMPLATE/avsr/avsr.sh --cpu_cmd "$cpu_cmd" --gpu_cmd "$gpu_cmd" --noise "$NOISE" "$@"
