#!/usr/bin/env bash
# Stage 1 of the LRS3 recipe (avsr.sh calls it from the recipe folder): Kaldi data directories
# <datadir>/{train,val,test} from the corpus named in db.sh. train = pretrain (clips longer than
# --max_seconds cut at word boundaries) + trainval less the validation clips; val = --val_count trainval
# clips drawn with --seed, or the --val_list; test = test. The work is python -m mome.bin.prepare_lrs.
set -euo pipefail
[ -f ./db.sh ] || { echo "$0: run me from the recipe folder (egs/<corpus>/avsr; avsr.sh does)" >&2; exit 1; }
. ./path.sh
. ./db.sh

corpus_root=${LRS3:-}          # holds pretrain/ trainval/ test/ (db.sh)
landmarks=${LRS3_LANDMARKS:-}  # <split>/<speaker>/<clip>.pkl, 68 points per frame (db.sh); empty: none
datadir=data               # where train/ val/ test/ are written
nj=4                       # parallel processes reading the media headers
max_seconds=16             # pretrain clips longer than this are cut at word boundaries
val_count=1200             # trainval clips held out for validation, drawn with --seed
val_list=                  # an explicit validation list (<speaker>/<clip> per line) instead of the draw
seed=0                     # seed of the validation draw
help_message="Usage: $0 [options]; run from the recipe folder. Options (default, db.sh's for the corpus):
$(grep -E '^[a-z_]+=.*#' "$0" | while IFS= read -r line; do n=${line%%=*}; echo "  --$n (${!n}) ${line#*# }"; done)"
. utils/parse_options.sh

die() { echo "$0: $*" >&2; exit 1; }
[ -d "$corpus_root" ] || die "corpus root '$corpus_root' does not exist: set LRS3 in db.sh"
[ -z "$landmarks" ] || [ -d "$landmarks" ] ||
  die "landmarks root '$landmarks' does not exist: set LRS3_LANDMARKS in db.sh (empty when you have none; then ./run.sh --landmarks detect)"
python -m mome.bin.prepare_lrs --corpus lrs3 --root "$corpus_root" --output_dir "$datadir" --nj "$nj" \
  --max_seconds "$max_seconds" --val_count "$val_count" --seed "$seed" \
  ${landmarks:+--landmarks "$landmarks"} ${val_list:+--val_list "$val_list"}
