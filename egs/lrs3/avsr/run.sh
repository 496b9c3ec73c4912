#!/usr/bin/env bash
# AVSR on LRS3. Corpus paths: db.sh; job back-end: cmd.sh; stages and options:
# ../../TEMPLATE/avsr/avsr.sh --help. Run from this folder, e.g. ./run.sh --stage 1 --stop_stage 2 --nj 16
set -euo pipefail
[ -f ./db.sh ] || { echo "run.sh: run me from my own folder, egs/lrs3/avsr" >&2; exit 1; }
. ./path.sh
. ./cmd.sh
. ./db.sh

../../TEMPLATE/avsr/avsr.sh \
  --cpu_cmd "$cpu_cmd" --gpu_cmd "$gpu_cmd" \
  --corpus lrs3 --corpus_root "$LRS3" --landmarks "$LRS3_LANDMARKS" --noise "$NOISE" \
  --max_seconds 16 --val_count 1200 \
  "$@"
