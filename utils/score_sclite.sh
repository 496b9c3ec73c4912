#!/usr/bin/env bash
# Score a Kaldi hypothesis text against a reference text (stage 5); the work is done by mome.scoring.
set -euo pipefail

help_message="Usage: ${0##*/} [--backend auto|sclite|python] REF_TEXT HYP_TEXT OUTDIR
Writes OUTDIR/result.txt (sclite's SYSTEM SUMMARY PERCENTAGES by SPEAKER), result_raw.txt (counts),
alignment.txt (per utterance), ref.trn / hyp.trn (normalised, sclite's format) and wer
('%WER 12.34 [ 45 / 365, 3 ins, 10 del, 32 sub ]'), and prints the wer line.
Options:
  --backend B   sclite: NIST sclite (/usr/lib/sctk/bin/sclite, sclite on PATH, 'sctk sclite', or \$SCLITE);
                python: our aligner, the same numbers without SCTK; auto (default): sclite if installed
Speakers: REF_TEXT's directory's utt2spk if present, else the utterance id up to its last '_'."

backend=auto
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

if [ $# -ne 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
case "$backend" in auto | sclite | python) ;; *) echo "${0##*/}: --backend must be auto, sclite or python, got '$backend'" >&2; exit 1 ;; esac

exec python -m mome.bin.score --backend "$backend" "$1" "$2" "$3"
