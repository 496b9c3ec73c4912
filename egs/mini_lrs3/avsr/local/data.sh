#!/usr/bin/env bash
# Stage 1 of the mini_lrs3 recipe (avsr.sh calls it from the recipe folder): generate the synthetic corpus
# into $MINI_LRS3 (db.sh; local/make_corpus.sh, skipped when it is there), then prepare it exactly as LRS3
# is prepared (egs/lrs3/avsr/local/data.sh): the corpus has LRS3's layout.
set -euo pipefail
[ -f ./db.sh ] || { echo "$0: run me from the recipe folder (egs/mini_lrs3/avsr; avsr.sh does)" >&2; exit 1; }
. ./path.sh
. ./db.sh

datadir=data       # where train/ val/ test/ are written
nj=2               # parallel processes generating the corpus and reading its media headers
max_seconds=16     # pretrain clips longer than this are cut at word boundaries
val_count=         # trainval clips held out for validation; empty: 200 (tiny: 2), so 1,800 train + 200 val
help_message="Usage: $0 [options]; run from the recipe folder. Corpus size, seed and place: MINI_LRS3_SIZE,
MINI_LRS3_SEED, MINI_LRS3 (db.sh). Options (default):
$(grep -E '^[a-z_]+=.*#' "$0" | while IFS= read -r line; do n=${line%%=*}; echo "  --$n (${!n}) ${line#*# }"; done)"
. utils/parse_options.sh

echo "$(date '+%Y-%m-%dT%H:%M:%S') (data.sh) synthetic corpus ($MINI_LRS3_SIZE) -> $MINI_LRS3"
local/make_corpus.sh --size "$MINI_LRS3_SIZE" --seed "$MINI_LRS3_SEED" --nj "$nj" "$MINI_LRS3"
[ -n "$val_count" ] || case "$MINI_LRS3_SIZE" in tiny) val_count=2 ;; *) val_count=200 ;; esac
# LRS3's own stage 1, found from this script's real place (the recipe folder may be a copy made of links)
lrs3_data=$(dirname "$(readlink -f "$0")")/../../../lrs3/avsr/local/data.sh
[ -x "$lrs3_data" ] || { echo "$0: $lrs3_data missing: this recipe prepares its corpus with LRS3's stage 1" >&2; exit 1; }
"$lrs3_data" --corpus_root "$MINI_LRS3/lrs3" --landmarks "$MINI_LRS3/landmarks" \
  --datadir "$datadir" --nj "$nj" --max_seconds "$max_seconds" --val_count "$val_count"
