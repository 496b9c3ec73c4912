#!/usr/bin/env bash
# The whole recipe on mini_lrs3, a small synthetic corpus with LRS3's layout that stage 1 generates
# (local/data.sh; skipped when it is there) and then prepares as LRS3 is prepared. Stages and options:
# ../../TEMPLATE/avsr/avsr.sh --help; corpus size and place: db.sh. Run from this folder, e.g.
#   MINI_LRS3_SIZE=tiny ./run.sh --stop_stage 2
# --compare true (this script's one option) trains and scores the whole comparison (MoME, its baselines and
# single-modality MoME, conf/README.md) instead of MoME alone.
set -euo pipefail
[ -f ./db.sh ] || { echo "run.sh: run me from my own folder, egs/mini_lrs3/avsr" >&2; exit 1; }
. ./path.sh
. ./cmd.sh
. ./db.sh

compare=false
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) compare=${2:-}; shift 2 || shift ;;
    --compare=*) compare=${1#*=}; shift ;;
    --help | -h)
      echo "This recipe: stage 1 generates the corpus (db.sh: MINI_LRS3, MINI_LRS3_SIZE default|tiny, MINI_LRS3_SEED);"
      echo "it passes --nj 2 --nproc 2 --snrs -5,0,5, --noise (the corpus' babble) and --train_configs before your options"
      echo "(yours win); --compare true trains the six configs of the comparison (conf/README.md), not only conf/train_mome.yaml."
      pass+=("$1"); shift ;;
    *) pass+=("$1"); shift ;;
  esac
done
case "$compare" in
  true) train_configs="conf/train_mome.yaml conf/train_mtsk_ss.yaml conf/train_llama_avsr_ra4_rv2.yaml"
        train_configs+=" conf/train_llama_avsr_ra16_rv5.yaml conf/train_asr_mome.yaml conf/train_vsr_mome.yaml" ;;
  false) train_configs=conf/train_mome.yaml ;;
  *) echo "run.sh: --compare must be true or false, got '$compare'" >&2; exit 1 ;;
esac

# the recipe's settings come first: options given to run.sh come later and win
../../TEMPLATE/avsr/avsr.sh \
  --cpu_cmd "$cpu_cmd" --gpu_cmd "$gpu_cmd" --noise "$MINI_LRS3/noise/babble.wav" \
  --nj 2 --snrs -5,0,5 --nproc 2 --train_configs "$train_configs" \
  ${pass[@]+"${pass[@]}"}
