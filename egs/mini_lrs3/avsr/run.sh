#!/usr/bin/env bash
# The whole recipe on mini_lrs3, a small synthetic corpus with LRS3's layout. Stage 0 generates it
# (local/make_corpus.sh, skipped when already there); stages 1.. are the shared ones
# (../../TEMPLATE/avsr/avsr.sh --help). Corpus size and place: db.sh. Run from this folder, e.g.
#   MINI_LRS3_SIZE=tiny ./run.sh --stop_stage 2
set -euo pipefail
[ -f ./db.sh ] || { echo "run.sh: run me from my own folder, egs/mini_lrs3/avsr" >&2; exit 1; }
. ./path.sh
. ./cmd.sh
. ./db.sh

# Stage 0 is this script's own: read --stage / --stop_stage without consuming them (avsr.sh gets all).
stage=0
stop_stage=100
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --stage) stage=${args[i + 1]:-} ;;
    --stage=*) stage=${args[i]#*=} ;;
    --stop_stage | --stop-stage) stop_stage=${args[i + 1]:-} ;;
    --stop_stage=* | --stop-stage=*) stop_stage=${args[i]#*=} ;;
    --help | -h)
      echo "Stage 0 (this script): generate the synthetic corpus into \$MINI_LRS3 (db.sh); stages 1-5 as below."
      exec ../../TEMPLATE/avsr/avsr.sh --help ;;
  esac
done
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || { echo "run.sh: --stage/--stop_stage must be numbers" >&2; exit 1; }

case "$MINI_LRS3_SIZE" in  # validation clips held out of trainval (700 in the default size, 4 in tiny)
  tiny) val_count=2 ;;
  *) val_count=200 ;;     # 2,000 train clips -> 1,800 train + 200 validation
esac

if ((stage <= 0 && 0 <= stop_stage)); then
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) stage 0: synthetic corpus ($MINI_LRS3_SIZE) -> $MINI_LRS3"
  local/make_corpus.sh --size "$MINI_LRS3_SIZE" --seed "$MINI_LRS3_SEED" --nj 2 "$MINI_LRS3"
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) stage 0: done"
fi
((stop_stage >= 1)) || exit 0

../../TEMPLATE/avsr/avsr.sh \
  --cpu_cmd "$cpu_cmd" --gpu_cmd "$gpu_cmd" \
  --corpus lrs3 --corpus_root "$MINI_LRS3/lrs3" --landmarks "$MINI_LRS3/landmarks" \
  --noise "$MINI_LRS3/noise/babble.wav" \
  --max_seconds 16 --val_count "$val_count" --nj 2 \
  "$@"
