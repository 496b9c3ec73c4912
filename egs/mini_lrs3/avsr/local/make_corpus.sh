#!/usr/bin/env bash
# Generate the synthetic mini_lrs3 corpus in <out-dir> (lrs3/, landmarks/, noise/babble.wav) with
# python -m mome.bin.make_mini_lrs3, unless a finished one made with the same size and seed is there.
set -euo pipefail
size=default  # default | tiny
seed=0
nj=1
help_message="Usage: $0 [--size default|tiny] [--seed 0] [--nj 1] <out-dir>"
. utils/parse_options.sh
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
out=$1
stamp=$out/.done
want="size=$size seed=$seed"

if [ -f "$stamp" ]; then
  have=$(cat "$stamp")
  if [ "$have" = "$want" ]; then
    echo "$0: $out already holds the corpus ($want); not regenerating"
    exit 0
  fi
  echo "$0: $out holds a corpus made with '$have', not '$want': remove it or choose another MINI_LRS3 in db.sh" >&2
  exit 1
fi
python -m mome.bin.make_mini_lrs3 --output_dir "$out" --size "$size" --seed "$seed" --nj "$nj"
echo "$want" >"$stamp"
