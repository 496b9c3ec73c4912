#!/usr/bin/env bash
# Stage 3 of mini_lrs3: make the stand-ins of the pretrained parts that the LRS recipes load from disk
# (Llama, Whisper, AV-HuBERT), once; each part is skipped when its finished output is there.
#   <datadir>/lang/                  from the synthesiser's alignments of the training set: phone and viseme lists
#                                    and pronunciation lexicons; <datadir>/<set>/{phones,visemes}: frame labels
#                                    (python -m mome.bin.frame_labels; never an input of the AVSR model)
#   <datadir>/speech_set/            extra synthetic speech of many voices (never a test voice, a validation or test
#                                    sentence) with its frame labels, for the audio stand-in (python -m
#                                    mome.bin.make_speech_set; wavs in <dumpdir>/speech_set)
#   <expdir>/pretrain_lm/            SentencePiece + small Llama on the corpus grammar and its spellings in sounds
#                                    and mouth shapes, never a validation or test sentence (python -m
#                                    mome.bin.pretrain_lm; a Hugging Face directory)
#   <expdir>/pretrain_audio/encoder  small audio encoder trained to give the phoneme of every frame, on the training
#                                    set and the speech set
#   <expdir>/pretrain_video/encoder  small video encoder trained to give the viseme of every frame
#                                    (python -m mome.bin.pretrain_encoder, ESPnet's trainer)
# The LM trains in the background beside the encoders (one process per core).
set -euo pipefail

datadir=data
dumpdir=dump
expdir=exp
. ./db.sh
alignments=$MINI_LRS3/alignments  # the synthesiser's phoneme timings of every clip (db.sh)
noise=             # babble noise for the audio encoder's augmentation
train_set=train
valid_set=val
test_sets=test
modalities="audio video"  # the encoders to pretrain
speech_set_size=6000  # utterances of extra synthetic speech for the audio encoder (0: none)
lm_args=           # more python -m mome.bin.pretrain_lm options, e.g. "--max_steps 100"
encoder_args=      # more python -m mome.bin.pretrain_encoder options, e.g. "--max_epoch 1"
if [ "$MINI_LRS3_SIZE" = tiny ]; then  # the few-clip corpus checks the mechanics, in seconds
  lm_args="--max_steps 10 --batch_size 4"
  encoder_args="--max_epoch 1 --num_iters_per_epoch 2"
  speech_set_size=20
fi
help_message="Usage: $0 [--alignments DIR] [--noise WAV] [--datadir data] [--dumpdir dump] [--expdir exp]
  [--modalities 'audio video'] [--speech_set_size N] [--lm_args ...] [--encoder_args ...]"
. utils/parse_options.sh
[ -n "$alignments" ] && [ -d "$alignments" ] || { echo "$0: --alignments '$alignments' is not a directory" >&2; exit 1; }

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*"; }

if [ ! -f "$datadir/lang/visemes.lexiconp.txt" ] || [ ! -f "$datadir/$valid_set/visemes" ]; then
  log "frame labels and lexicons from $alignments -> $datadir/lang, $datadir/{$train_set,$valid_set}/{phones,visemes}"
  python -m mome.bin.frame_labels --alignments "$alignments" --lang_dir "$datadir/lang" \
    "$datadir/$train_set" "$datadir/$valid_set"
fi

# what the LM and the speech set never hold: the validation and test sentences
exclude=()
for set in $valid_set $test_sets; do exclude+=("$datadir/$set/text"); done

lm=$expdir/pretrain_lm
lm_pid=
if [ ! -f "$lm/pretraining.json" ]; then
  log "LLM stand-in -> $lm (log: $expdir/pretrain_lm.log)"
  mkdir -p "$expdir"
  # shellcheck disable=SC2086
  python -m mome.bin.pretrain_lm --output_dir "$lm" --exclude "${exclude[@]}" \
    --lexicon "audio=$datadir/lang/phones.lexiconp.txt" "video=$datadir/lang/visemes.lexiconp.txt" \
    $lm_args >"$expdir/pretrain_lm.log" 2>&1 &
  lm_pid=$!
fi

# the speech set, and <datadir>/<train_set>_speech_set: both together (the audio stand-in's training data, and that
# of the real-weights projectors' warm-up, conf/train_ctc_real.yaml)
if [[ " $modalities " == *" audio "* ]] && ((speech_set_size > 0)); then
  log "speech set: $speech_set_size utterances of new voices -> $datadir/speech_set"
  python -m mome.bin.make_speech_set --data_dir "$datadir/speech_set" --dump_dir "$dumpdir/speech_set" \
    --phone_list "$datadir/lang/phones.txt" --exclude "${exclude[@]}" --corpus_stats "$MINI_LRS3/stats.json" \
    --utterances "$speech_set_size" --no_progress
  mkdir -p "$datadir/${train_set}_speech_set"
  for f in wav.scp text utt2dur utt2spk phones; do
    sort "$datadir/$train_set/$f" "$datadir/speech_set/$f" >"$datadir/${train_set}_speech_set/$f"
  done
fi

for modality in $modalities; do
  out=$expdir/pretrain_$modality
  [ ! -f "$out/encoder/model.safetensors" ] || { log "$modality encoder: $out/encoder is there"; continue; }
  train_dir=$datadir/$train_set
  if [ $modality = audio ]; then
    labels=phones tokens=$datadir/lang/phones.txt inputs=wav.scp,audio,sound
    extra=(); [ -z "$noise" ] || extra=(--preprocessor_conf "noise=$noise")
    # the encoder learns from the training set and the speech set together
    ((speech_set_size == 0)) || train_dir=$datadir/${train_set}_speech_set
  else
    labels=visemes tokens=$datadir/lang/visemes.txt inputs=roi.scp,video,roi
    extra=()
  fi
  log "$modality encoder stand-in -> $out/encoder (log: $out/train.log)"
  mkdir -p "$out"
  # shellcheck disable=SC2086
  python -m mome.bin.pretrain_encoder --config conf/pretrain_$modality.yaml --output_dir "$out" --resume true \
    --token_list "$tokens" "${extra[@]}" \
    --train_data_path_and_name_and_type "$train_dir/$inputs" \
    --train_data_path_and_name_and_type "$train_dir/$labels,labels,text_int" \
    --valid_data_path_and_name_and_type "$datadir/$valid_set/$inputs" \
    --valid_data_path_and_name_and_type "$datadir/$valid_set/$labels,labels,text_int" \
    $encoder_args >"$out/train.log" 2>&1 || { echo "$0: $modality encoder pretraining failed: see $out/train.log" >&2; exit 1; }
  grep -o "\[valid\] loss=[^,]*, acc=[^,]*" "$out/train.log" | tail -1 | sed "s/^/  $modality: /"
done

if [ -n "$lm_pid" ]; then
  log "waiting for the LLM stand-in (log: $expdir/pretrain_lm.log)"
  wait "$lm_pid" || { echo "$0: LM pretraining failed: see $expdir/pretrain_lm.log" >&2; exit 1; }
fi
grep -o "stand-in LLM: perplexity.*" "$expdir/pretrain_lm.log" | tail -1 | sed 's/^/  /'
log "done"
