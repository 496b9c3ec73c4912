#!/usr/bin/env bash
# The shared stage script of the AVSR recipes. Each egs/<corpus>/avsr/run.sh sources path.sh, cmd.sh
# and db.sh and calls this script, from its own folder, with the corpus options.
#
#   stage 1: data preparation     data/{train,val,test}         (python -m mome.bin.prepare_lrs)
#   stage 2: audio + mouth ROI    dump/<set>/{wav,roi}, data/<set>/{wav.scp,roi.scp}
#                                 (python -m mome.bin.extract, sharded over --nj jobs, then --merge)
#            noisy test copies    data/<test set>_babble_snr<N>  (python -m mome.bin.make_noisy; with --noise)
#   stage 3: training             exp/<model>/ per --train_configs (python -m mome.bin.avsr_train, ESPnet's trainer)
#   stage 4: decoding             exp/<model>/decode_<set>_ra<A>_rv<V>/text at every trained rate pair, every test
#                                 set and its noisy copies (python -m mome.bin.avsr_inference)
#   stage 5: scoring              .../score/result.txt (utils/score_sclite.sh), exp/RESULTS.md
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*"; }
die() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) error: $*" >&2; exit 1; }
SECONDS=0

stage=1            # first stage to run
stop_stage=100     # last stage to run
nj=4               # parallel jobs (stage 1 reads media headers, stage 2 extraction shards)
cpu_cmd="utils/run_jobs.sh --backend local"  # job runner for CPU jobs (cmd.sh)
gpu_cmd="utils/run_jobs.sh --backend local"  # job runner for GPU jobs (cmd.sh)
corpus=lrs3        # layout of --corpus_root: lrs3 (also the synthetic mini_lrs3) or lrs2
corpus_root=       # the corpus (db.sh)
landmarks=         # landmarks root, <split>/<speaker>/<clip>.pkl (db.sh); empty: no landmarks.scp
max_seconds=16     # pretrain clips longer than this are cut at word boundaries
val_count=1200     # LRS3: trainval utterances held out for validation (drawn with --seed)
val_list=          # LRS3: explicit validation list instead of the draw (<speaker>/<clip> per line)
seed=0             # seed of the validation draw
noise=             # babble noise wav for the noisy test copies (db.sh); empty: no noisy copies
snrs=-5,0,5,10,15,20  # SNRs (dB) of the noisy test copies
train_set=train    # data sets used by the later stages
valid_set=val      # validation set
test_sets=test     # space-separated
datadir=data       # Kaldi data directories
dumpdir=dump       # extracted audio and mouth ROIs
train_configs=conf/train_mome.yaml  # space-separated; each trains exp/<config name without train_>
decode_config=conf/decode.yaml      # beam size, checkpoint, batch size of stage 4
expdir=exp         # trained models, decodings, RESULTS.md
ngpu=0             # GPUs per training job (>1: torch DDP through ESPnet's launcher)
nproc=1            # CPU only: data-parallel processes per training job (torchrun, gloo back-end)
features=false     # true: encode train/valid once with each config's frozen pretrained encoders (dump/features/)
                   # and train from those features instead of encoding every epoch (no audio/video augmentation)
train_args=        # more avsr_train options, e.g. "--max_epoch 1"
decode_args=       # more avsr_inference options, e.g. "--beam_size 1"

help_message="Usage: $0 [options]
Runs the stages --stage .. --stop_stage (1: data prep, 2: audio + mouth ROI extraction and noisy test
copies, 3: training, 4: decoding at every trained rate pair, 5: scoring). Run it from egs/<corpus>/avsr.
Options (default):
$(grep -E '^[a-z_]+=.*#' "${BASH_SOURCE[0]}" | sed -E 's/^([a-z_]+)= /\1="" /; s/^([a-z_]+)=("[^"]*"|[^ ]*) *# */  --\1 (\2) /')"

[ -f utils/parse_options.sh ] || die "run this from a recipe folder (egs/<corpus>/avsr) holding the utils link"
. utils/parse_options.sh
[ $# -eq 0 ] || die "unexpected arguments: $* (see --help)"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be numbers"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"

runs() { ((stage <= $1 && $1 <= stop_stage)); }

if runs 1 || runs 2; then
  [ -n "$corpus_root" ] || die "--corpus_root is empty: set the corpus path in db.sh"
  [ -d "$corpus_root" ] || die "corpus root '$corpus_root' does not exist: set the corpus path in db.sh"
fi

if runs 1; then
  log "stage 1: data preparation ($corpus at $corpus_root) -> $datadir/{train,val,test}"
  opts=(--corpus "$corpus" --root "$corpus_root" --out "$datadir" --max-seconds "$max_seconds"
        --val-count "$val_count" --seed "$seed" --nj "$nj")
  if [ -n "$landmarks" ]; then
    [ -d "$landmarks" ] || die "landmarks root '$landmarks' does not exist: fix it in db.sh or leave it empty"
    opts+=(--landmarks "$landmarks")
  fi
  if [ -n "$val_list" ]; then
    [ -f "$val_list" ] || die "--val_list '$val_list' does not exist"
    opts+=(--val-list "$val_list")
  fi
  python -m mome.bin.prepare_lrs "${opts[@]}"
  for set in train val test; do
    utils/validate_data_dir.sh "$datadir/$set"
  done
  log "stage 1: done"
fi

if runs 2; then
  log "stage 2: audio and mouth ROI extraction ($nj jobs per set) -> $dumpdir"
  for set in $train_set $valid_set $test_sets; do
    [ -f "$datadir/$set/segments" ] || die "$datadir/$set/segments missing: run stage 1 first"
    log "stage 2: extracting $set"
    $cpu_cmd JOB=1:"$nj" "$dumpdir/$set/log/extract.JOB.log" \
      python -m mome.bin.extract --data "$datadir/$set" --dump "$dumpdir/$set" --job JOB --njobs "$nj"
    python -m mome.bin.extract --data "$datadir/$set" --dump "$dumpdir/$set" --merge
    utils/validate_data_dir.sh "$datadir/$set"
  done
  if [ -n "$noise" ]; then
    [ -f "$noise" ] || die "noise file '$noise' does not exist: fix it in db.sh or leave it empty"
    for set in $test_sets; do
      log "stage 2: noisy copies of $set (babble, SNR $snrs dB)"
      python -m mome.bin.make_noisy --data "$datadir/$set" --noise "$noise" --snrs="$snrs" --dump "$dumpdir"
    done
  else
    log "stage 2: no --noise given: no noisy test copies"
  fi
  log "stage 2: done"
fi

model_name() { local n; n=$(basename "$1" .yaml); echo "${n#train_}"; }

if runs 3; then
  for config in $train_configs; do
    [ -f "$config" ] || die "training config '$config' does not exist"
    model=$(model_name "$config")
    log "stage 3: training $model ($config) -> $expdir/$model (log: $expdir/$model/train.log)"
    opts=(--config "$config" --output_dir "$expdir/$model" --resume true)
    for pair in "train:$train_set" "valid:$valid_set"; do
      name=${pair%%:*} set=${pair#*:}
      [ -f "$datadir/$set/roi.scp" ] || die "$datadir/$set/roi.scp missing: run stage 2 first"
      opts+=(--${name}_data_path_and_name_and_type "$datadir/$set/wav.scp,audio,sound"
             --${name}_data_path_and_name_and_type "$datadir/$set/roi.scp,video,roi"
             --${name}_data_path_and_name_and_type "$datadir/$set/text,text,text")
    done
    [ -z "$noise" ] || opts+=(--preprocessor_conf "noise=$noise")  # babble augmentation
    if [ "$features" = true ]; then
      for pair in "train:$train_set" "valid:$valid_set"; do
        name=${pair%%:*} set=${pair#*:} feats=$dumpdir/features/$model/${pair#*:}
        if [ ! -f "$feats/.done" ]; then
          log "stage 3: encoding $set once with the frozen encoders of $config -> $feats"
          $gpu_cmd "$feats/log/dump_features.log" python -m mome.bin.dump_features --config "$config" \
            --data_dir "$datadir/$set" --out "$feats"
          touch "$feats/.done"
        fi
        for m in audio video; do
          [ ! -f "$feats/${m}_feats.scp" ] ||
            opts+=(--${name}_data_path_and_name_and_type "$feats/${m}_feats.scp,${m}_feats,kaldi_ark")
        done
      done
      opts+=(--model_conf precomputed_features=true)
    fi
    if ((nproc > 1)); then  # CPU data parallel: one process per rank, gloo
      launcher=(torchrun --nproc_per_node "$nproc" -m mome.bin.avsr_train --ngpu 0 --dist_backend gloo
                --multiprocessing_distributed false)
    else
      launcher=(python -m mome.bin.avsr_train --ngpu "$ngpu")
      ((ngpu <= 1)) || launcher+=(--multiprocessing_distributed true)
    fi
    # shellcheck disable=SC2086  # train_args: extra options, split on purpose
    $gpu_cmd "$expdir/$model/train.log" "${launcher[@]}" "${opts[@]}" $train_args
  done
  log "stage 3: done"
fi

# every test set and its noisy copies made by stage 2
decode_sets=()
for set in $test_sets; do
  decode_sets+=("$set")
  for d in "$datadir/${set}"_babble_snr*; do [ -d "$d" ] && decode_sets+=("${d##*/}"); done
done

if runs 4; then
  for config in $train_configs; do
    model=$(model_name "$config")
    [ -d "$expdir/$model" ] || die "$expdir/$model does not exist: run stage 3 first"
    log "stage 4: decoding ${decode_sets[*]} with $model at every trained rate pair (log: $expdir/$model/decode.log)"
    # shellcheck disable=SC2086
    $gpu_cmd "$expdir/$model/decode.log" python -m mome.bin.avsr_inference --config "$decode_config" \
      --model_dir "$expdir/$model" --data_dir "${decode_sets[@]/#/$datadir/}" $decode_args
  done
  log "stage 4: done"
fi

if runs 5; then
  log "stage 5: scoring"
  for config in $train_configs; do
    model=$(model_name "$config")
    for d in "$expdir/$model"/decode_*_ra*_rv*; do
      [ -f "$d/text" ] || continue
      set=${d##*/decode_}
      set=${set%_ra*_rv*}
      echo -n "$model ${d##*/decode_}: "
      utils/score_sclite.sh "$datadir/$set/text" "$d/text" "$d/score"
    done
  done
  python -m mome.bin.make_results "$expdir" --out "$expdir/RESULTS.md"
  cat "$expdir/RESULTS.md"
  log "stage 5: done ($expdir/RESULTS.md)"
fi

log "finished stages $stage..$((stop_stage < 5 ? stop_stage : 5)) in ${SECONDS} s"
