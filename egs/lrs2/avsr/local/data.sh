#!/usr/bin/env bash
# Stage 1 of the LRS2 recipe (avsr.sh calls it from the recipe folder): Kaldi data directories
# <datadir>/{train,val,test} from the corpus named in db.sh and its official lists: train = pretrain.txt
# (clips longer than --max_seconds cut at word boundaries) + train.txt, val = val.txt, test = test.txt.
# The work is python -m mome.bin.prepare_lrs.
set -euo pipefail
[ -f ./db.sh ] || { echo "$0: run me from the recipe folder (egs/<corpus>/avsr; avsr.sh does)" >&2; exit 1; }
. ./path.sh
. ./db.sh

corpus_root=${LRS2:-}          # holds mvlrs_v1/{main,pretrain}/ and the lists (db.sh)
landmarks=${LRS2_LANDMARKS:-}  # {main,pretrain}/<show>/<clip>.pkl, 68 points per frame (db.sh); empty: none
datadir=data               # where train/ val/ test/ are written
nj=4                       # parallel processes reading the media headers
max_seconds=16             # pretrain clips longer than this are cut at word boundaries
help_message="Usage: $0 [options]; run from the recipe folder. Options (default, db.sh's for the corpus):
$(grep -E '^[a-z_]+=.*#' "$0" | while IFS= read -r line; do n=${line%%=*}; echo "  --$n (${!n}) ${line#*# }"; done)"
. utils/parse_options.sh

die() { echo "$0: $*" >&2; exit 1; }
[ -d "$corpus_root" ] || die "corpus root '$corpus_root' does not exist: set LRS2 in db.sh"
[ -z "$landmarks" ] || [ -d "$landmarks" ] ||
  die "landmarks root '$landmarks' does not exist: set LRS2_LANDMARKS in db.sh (empty when you have none; then ./run.sh --landmarks detect)"
python -m mome.bin.prepare_lrs --corpus lrs2 --root "$corpus_root" --output_dir "$datadir" --nj "$nj" \
  --max_seconds "$max_seconds" ${landmarks:+--landmarks "$landmarks"}
