#!/usr/bin/env bash
# The shared stage script of the AVSR recipes; it knows no corpus. Each egs/<corpus>/avsr/run.sh sources
# path.sh, cmd.sh and db.sh and calls this script from its own folder; the corpus is the recipe's business:
# its local/data.sh (stage 1) and, when it has one, local/pretrain.sh (stage 3).
#
#   stage 1: data preparation     data/{train,val,test}         (the recipe's local/data.sh)
#   stage 2: audio + mouth ROI    dump/<set>/{wav,roi}, data/<set>/{wav.scp,roi.scp}
#                                 (python -m mome.bin.extract, sharded over --nj jobs, then --merge); with
#                                 --landmarks detect, MediaPipe's face mesh first finds the landmarks of each video
#                                 (dump/<set>/landmarks/, listed in data/<set>/landmarks.scp; tools/install_face_mesh.sh)
#            noisy test copies    data/<test set>_babble_snr<N>  (python -m mome.bin.make_noisy; with --noise)
#   stage 3: pretrained parts     the recipe's local/pretrain.sh when it has one (a recipe that makes its own,
#                                 e.g. small stand-ins trained on its corpus); without one, the configs load theirs
#                                 from disk
#   stage 4: training             exp/<model>/ per --train_configs (python -m mome.bin.avsr_train, ESPnet's trainer)
#   stage 5: decoding             exp/<model>/decode_<set>_ra<A>_rv<V>/text at every trained rate pair, every test
#                                 set and its noisy copies (python -m mome.bin.avsr_inference)
#   stage 6: scoring              .../score/result.txt (utils/score_sclite.sh), exp/RESULTS.md
#   stage 7: analysis             exp/plots/: WER against the LLM's compute per model and rate pair; per MoME model,
#                                 expert usage by layer, rate pair and token type, and how stable the chosen
#                                 experts stay across rates (python -m mome.bin.analyse)
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*"; }
die() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) error: $*" >&2; exit 1; }
SECONDS=0

stage=1            # first stage to run
stop_stage=100     # last stage to run
nj=4               # parallel jobs (stage 1 reads media headers, stage 2 extraction shards)
cpu_cmd="utils/run_jobs.sh --backend local"  # job runner for CPU jobs (cmd.sh)
gpu_cmd="utils/run_jobs.sh --backend local"  # job runner for GPU jobs (cmd.sh)
local_data_opts=   # options of the recipe's local/data.sh (stage 1), e.g. "--val_count 600"
landmarks=         # detect: stage 2 finds the landmarks of videos without landmark files (MediaPipe's face mesh)
noise=             # babble noise wav for the noisy test copies (db.sh); empty: no noisy copies
snrs=-5,0,5,10,15,20  # SNRs (dB) of the noisy test copies
train_set=train    # data sets used by the later stages
valid_set=val      # validation set
test_sets=test     # space-separated
datadir=data       # Kaldi data directories
dumpdir=dump       # extracted audio and mouth ROIs
train_configs=conf/train_mome.yaml  # space-separated; each trains exp/<config name without train_><--train_args> (or --tag)
decode_config=conf/decode.yaml      # beam size, checkpoint, batch size of stage 5
expdir=exp         # trained models, decodings, RESULTS.md
ngpu=0             # GPUs per training job (>1: torch DDP through ESPnet's launcher)
nproc=1            # CPU only: data-parallel processes per training job (torchrun, gloo back-end)
features=auto      # auto: encode once (dump/features/) the modalities of the config's precomputed_features; true: all (no augmentation); false: none
                   # (the features are shared by configs with the same frozen encoder)
train_args=        # more avsr_train options, e.g. "--max_epoch 1"; they are part of the model's name (as ESPnet's asr_tag)
tag=               # the model's name, exp/<tag> (one --train_configs only); default: <config name without train_><--train_args>
decode_args=       # more avsr_inference options, e.g. "--beam_size 1"
pretrain_args=     # more options of the recipe's local/pretrain.sh (stage 3), e.g. "--lm_args '--max_steps 100'"

help_message="Usage: $0 [options]
Runs the stages --stage .. --stop_stage (1: data prep, 2: audio + mouth ROI extraction and noisy test
copies, 3: pretrained parts (local/pretrain.sh), 4: training, 5: decoding at every trained rate pair,
6: scoring, 7: analysis plots). Run it from egs/<corpus>/avsr.
Options (default):
$(grep -E '^[a-z_]+=.*#' "${BASH_SOURCE[0]}" | sed -E 's/^([a-z_]+)= /\1="" /; s/^([a-z_]+)=("[^"]*"|[^ ]*) *# */  --\1 (\2) /')"

[ -f utils/parse_options.sh ] || die "run this from a recipe folder (egs/<corpus>/avsr) holding the utils link"
. utils/parse_options.sh
[ $# -eq 0 ] || die "unexpected arguments: $* (see --help)"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be numbers"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
[[ "$ngpu" =~ ^[0-9]+$ && "$nproc" =~ ^[1-9][0-9]*$ ]] || die "--ngpu and --nproc must be numbers, got '$ngpu', '$nproc'"
# the extra options, split on spaces and never globbed ("audio_rates=[16]" is no file pattern)
read -ra train_argv <<<"$train_args"
read -ra decode_argv <<<"$decode_args"
gpu_opts=() device_opts=()  # a training job of --ngpu GPUs (the job runner's later --gpu wins over cmd.sh's)
((ngpu <= 1)) || gpu_opts=(--gpu "$ngpu")
((ngpu == 0)) || device_opts=(--device cuda)  # the feature dump's encoders on the GPU too
[[ "$landmarks" = "" || "$landmarks" = detect ]] ||
  die "--landmarks is empty or 'detect', got '$landmarks' (the landmark files are named in db.sh)"
[[ -z "$tag" || "$train_configs" != *" "* ]] || die "--tag names one model: give one --train_configs with it"

runs() { ((stage <= $1 && $1 <= stop_stage)); }

if runs 1; then
  [ -x local/data.sh ] || die "local/data.sh is missing: each recipe prepares its corpus there (stage 1)"
  log "stage 1: data preparation (local/data.sh $local_data_opts) -> $datadir/{$train_set,$valid_set,${test_sets// /,}}"
  # eval: --local_data_opts may quote options that take several words
  eval "local/data.sh --datadir '$datadir' --nj '$nj' $local_data_opts" || die "stage 1 failed (local/data.sh)"
  for set in $train_set $valid_set $test_sets; do
    utils/validate_data_dir.sh "$datadir/$set"
  done
  log "stage 1: done"
fi

if runs 2; then
  log "stage 2: audio and mouth ROI extraction ($nj jobs per set) -> $dumpdir"
  extract_opts=()
  if [ "$landmarks" = detect ]; then
    # the face mesh environment must be there before the jobs start: its message names the command that makes it
    python -m mome.data.face_mesh --check || die "--landmarks detect needs the face mesh environment (above)"
    extract_opts=(--landmarks detect)
    log "stage 2: landmarks of the videos without landmark files are detected (MediaPipe face mesh)"
  fi
  for set in $train_set $valid_set $test_sets; do
    [ -f "$datadir/$set/segments" ] || die "$datadir/$set/segments missing: run stage 1 first"
    log "stage 2: extracting $set"
    $cpu_cmd JOB=1:"$nj" "$dumpdir/$set/log/extract.JOB.log" \
      python -m mome.bin.extract --data_dir "$datadir/$set" --dump_dir "$dumpdir/$set" --job JOB --njobs "$nj" "${extract_opts[@]}"
    python -m mome.bin.extract --data_dir "$datadir/$set" --dump_dir "$dumpdir/$set" --merge "${extract_opts[@]}"
    utils/validate_data_dir.sh "$datadir/$set"
  done
  if [ -n "$noise" ]; then
    [ -f "$noise" ] || die "noise file '$noise' does not exist: fix it in db.sh or leave it empty"
    for set in $test_sets; do
      log "stage 2: noisy copies of $set (babble, SNR $snrs dB)"
      python -m mome.bin.make_noisy --data_dir "$datadir/$set" --noise "$noise" --snrs="$snrs" --dump_dir "$dumpdir"
    done
  else
    log "stage 2: no --noise given: no noisy test copies"
  fi
  log "stage 2: done"
fi

# exp/<name> of a config: --tag, or the config's name without train_ followed by the --train_args, as
# ESPnet names its experiments ("--max_epoch 2" -> mome_max_epoch2)
model_name() {
  local n
  [ -z "$tag" ] || { echo "$tag"; return; }
  n=$(basename "$1" .yaml)
  echo "${n#train_}$(echo "$train_args" | sed -e 's/--/_/g' -e 's/,/-/g' -e "s/[][ |=/'\"]//g")"
}

if runs 3; then
  if [ -x local/pretrain.sh ]; then
    log "stage 3: pretrained parts (local/pretrain.sh)"
    # eval: --pretrain_args may quote options that take several words ("--lm_args '--max_steps 100'")
    eval "local/pretrain.sh --datadir '$datadir' --dumpdir '$dumpdir' --expdir '$expdir' --train_set '$train_set' \
      --valid_set '$valid_set' --test_sets '$test_sets' --noise '$noise' $pretrain_args" ||
      die "stage 3 failed"
  else
    log "stage 3: nothing to do (this recipe has no local/pretrain.sh: the configs load their pretrained parts from disk)"
  fi
  log "stage 3: done"
fi

if runs 4; then
  for config in $train_configs; do
    [ -f "$config" ] || die "training config '$config' does not exist"
    model=$(model_name "$config")
    log "stage 4: training $model ($config) -> $expdir/$model (log: $expdir/$model/train.log)"
    opts=(--config "$config" --output_dir "$expdir/$model" --resume true)
    for pair in "train:$train_set" "valid:$valid_set"; do
      name=${pair%%:*} set=${pair#*:}
      # an audio-only set (the mini recipe's speech set) has no roi.scp; avsr_train says so if the config reads video
      [ -f "$datadir/$set/roi.scp" ] || [ -f "$datadir/$set/wav.scp" ] ||
        die "$datadir/$set has neither roi.scp nor wav.scp: run stage 2 first"
      for input in wav.scp,audio,sound roi.scp,video,roi; do
        [ ! -f "$datadir/$set/${input%%,*}" ] || opts+=(--${name}_data_path_and_name_and_type "$datadir/$set/$input")
      done
      opts+=(--${name}_data_path_and_name_and_type "$datadir/$set/text,text,text")
    done
    [ -z "$noise" ] || opts+=(--preprocessor_conf "noise=$noise")  # babble augmentation
    case "$features" in
      auto) dump_opts=() ;;
      true) dump_opts=(--modalities audio video); opts+=(--model_conf precomputed_features=true) ;;
      false) opts+=(--model_conf precomputed_features=false) ;;
      *) die "--features must be auto, true or false, got '$features'" ;;
    esac
    if [ "$features" != false ]; then
      for pair in "train:$train_set" "valid:$valid_set"; do
        name=${pair%%:*} set=${pair#*:}
        # the log gets one '<name> <scp>' line per modality the config trains from features (dumped once per
        # frozen encoder, shared by the configs that have it)
        dump_log=$expdir/$model/log/dump_features.$set.log
        $gpu_cmd "$dump_log" python -m mome.bin.dump_features --config "$config" --data_dir "$datadir/$set" \
          --dump_dir "$dumpdir/features" "${dump_opts[@]}" "${device_opts[@]}" || die "encoding $set failed: see $dump_log"
        while read -r feats_name scp; do
          opts+=(--${name}_data_path_and_name_and_type "$scp,$feats_name,kaldi_ark")
        done < <(grep -E '^(audio|video)_feats ' "$dump_log")
      done
    fi
    if ((nproc > 1)); then  # CPU data parallel: one process per rank, gloo
      launcher=(torchrun --nproc_per_node "$nproc" -m mome.bin.avsr_train --ngpu 0 --dist_backend gloo
                --multiprocessing_distributed false)
    else
      launcher=(python -m mome.bin.avsr_train --ngpu "$ngpu")
      ((ngpu <= 1)) || launcher+=(--multiprocessing_distributed true)
    fi
    $gpu_cmd "${gpu_opts[@]}" "$expdir/$model/train.log" "${launcher[@]}" "${opts[@]}" "${train_argv[@]}"
  done
  log "stage 4: done"
fi

# every test set and its noisy copies made by stage 2
decode_sets=()
for set in $test_sets; do
  decode_sets+=("$set")
  for d in "$datadir/${set}"_babble_snr*; do [ -d "$d" ] && decode_sets+=("${d##*/}"); done
done

if runs 5; then
  for config in $train_configs; do
    model=$(model_name "$config")
    [ -d "$expdir/$model" ] || die "$expdir/$model does not exist: run stage 4 first (or give the --train_args / --tag stage 4 had: they name the model)"
    log "stage 5: decoding ${decode_sets[*]} with $model at every trained rate pair (log: $expdir/$model/decode.log)"
    $gpu_cmd "$expdir/$model/decode.log" python -m mome.bin.avsr_inference --config "$decode_config" \
      --model_dir "$expdir/$model" --data_dir "${decode_sets[@]/#/$datadir/}" "${decode_argv[@]}"
  done
  log "stage 5: done"
fi

if runs 6; then
  log "stage 6: scoring"
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
  python -m mome.bin.make_results "$expdir" --output "$expdir/RESULTS.md"
  cat "$expdir/RESULTS.md"
  log "stage 6: done ($expdir/RESULTS.md)"
fi

if runs 7; then
  log "stage 7: analysis -> $expdir/plots (log: $expdir/analyse.log)"
  models=()
  for config in $train_configs; do models+=("$expdir/$(model_name "$config")"); done
  # shellcheck disable=SC2086
  $gpu_cmd "$expdir/analyse.log" python -m mome.bin.analyse --model_dirs "${models[@]}" --data_dir "$datadir/${test_sets%% *}" \
    --output_dir "$expdir/plots" --results "$expdir/RESULTS.md"
  sed -n '/^## Analysis/,$p' "$expdir/RESULTS.md"
  log "stage 7: done ($expdir/plots)"
fi

log "finished stages $stage..$((stop_stage < 7 ? stop_stage : 7)) in ${SECONDS} s"
