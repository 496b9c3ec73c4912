#!/usr/bin/env bash
# Stage 1 of the mini_lrs3 recipe (avsr.sh calls it from the recipe folder): generate the synthetic corpus
# into $MINI_LRS3 (db.sh; local/make_corpus.sh, skipped when it is there), then prepare it exactly as LRS3
# is prepared (egs/lrs3/avsr/local/data.sh): the corpus has LRS3's layout.
set -euo pipefail
. ./db.sh

datadir=data  # where train/ val/ test/ are written
nj=2          # parallel processes generating the corpus and reading its media headers
help_message="Usage: $0 [--datadir data] [--nj 2]; corpus size, seed and place: MINI_LRS3_SIZE, MINI_LRS3_SEED, MINI_LRS3 (db.sh)"
. utils/parse_options.sh

echo "$(date '+%Y-%m-%dT%H:%M:%S') (data.sh) synthetic corpus ($MINI_LRS3_SIZE) -> $MINI_LRS3"
local/make_corpus.sh --size "$MINI_LRS3_SIZE" --seed "$MINI_LRS3_SEED" --nj "$nj" "$MINI_LRS3"
case "$MINI_LRS3_SIZE" in  # validation clips held out of trainval
  tiny) val_count=2 ;;
  *) val_count=200 ;;      # 2,000 trainval clips -> 1,800 train + 200 validation
esac
# LRS3's own stage 1, found from this script's real place (the recipe folder may be a copy of links)
lrs3_data=$(dirname "$(readlink -f "$0")")/../../../lrs3/avsr/local/data.sh
"$lrs3_data" --corpus_root "$MINI_LRS3/lrs3" --landmarks "$MINI_LRS3/landmarks" \
  --datadir "$datadir" --nj "$nj" --max_seconds 16 --val_count "$val_count"
