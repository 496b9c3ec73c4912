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

# Stage 0 is this script's own: read --stage / --stop_stage without consuming them (avsr.sh gets the
# rest). --compare true trains and scores the whole comparison (MoME, its baselines and single-modality
# MoME) instead of MoME alone.
stage=0
stop_stage=100
compare=false
args=("$@")
pass=()
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --compare) compare=${args[i + 1]:-}; i=$((i + 1)); continue ;;
    --compare=*) compare=${args[i]#*=}; continue ;;
    --stage) stage=${args[i + 1]:-} ;;
    --stage=*) stage=${args[i]#*=} ;;
    --stop_stage | --stop-stage) stop_stage=${args[i + 1]:-} ;;
    --stop_stage=* | --stop-stage=*) stop_stage=${args[i]#*=} ;;
    --help | -h)
      echo "Stage 0 (this script): generate the synthetic corpus into \$MINI_LRS3 (db.sh); stages 1-7 as below."
      echo "This recipe passes --nj 2 --nproc 2 --snrs -5,0,5 --val_count 200 (tiny: 2) --max_seconds 16 before your options."
      echo "--compare true: train the six configs of RESULTS.md (conf/train_*.yaml), not only conf/train_mome.yaml."
      exec ../../TEMPLATE/avsr/avsr.sh --help ;;
  esac
  pass+=("${args[i]}")
done
case "$compare" in
  true) train_configs="conf/train_mome.yaml conf/train_mtsk_ss.yaml conf/train_llama_avsr_ra4_rv2.yaml"
        train_configs+=" conf/train_llama_avsr_ra16_rv5.yaml conf/train_asr_mome.yaml conf/train_vsr_mome.yaml" ;;
  false) train_configs=conf/train_mome.yaml ;;
  *) echo "run.sh: --compare must be true or false, got '$compare'" >&2; exit 1 ;;
esac
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || { echo "run.sh: --stage/--stop_stage must be numbers" >&2; exit 1; }

case "$MINI_LRS3_SIZE" in  # validation clips held out of trainval (200 in the default size, 2 in tiny)
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
  --max_seconds 16 --val_count "$val_count" --nj 2 --snrs -5,0,5 --nproc 2 \
  --train_configs "$train_configs" \
  "${pass[@]}"
