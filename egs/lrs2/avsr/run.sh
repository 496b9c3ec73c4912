#!/usr/bin/env bash
# AVSR on LRS2 (official pretrain/train/val/test lists). Corpus paths: db.sh; job back-end: cmd.sh;
# stages and options: ../../TEMPLATE/avsr/avsr.sh --help. Run from this folder.
set -euo pipefail
[ -f ./db.sh ] || { echo "run.sh: run me from my own folder, egs/lrs2/avsr" >&2; exit 1; }
. ./path.sh
. ./cmd.sh
. ./db.sh

../../TEMPLATE/avsr/avsr.sh \
  --cpu_cmd "$cpu_cmd" --gpu_cmd "$gpu_cmd" \
  --corpus lrs2 --corpus_root "$LRS2" --landmarks "$LRS2_LANDMARKS" --noise "$NOISE" \
  --max_seconds 16 \
  "$@"
