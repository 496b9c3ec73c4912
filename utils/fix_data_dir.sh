#!/usr/bin/env bash
# Sort a Kaldi-style data directory, keep the utterances present in every per-utterance file (logging
# the others to skipped.txt), drop unused recordings, regenerate spk2utt, then validate it.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "Usage: ${0##*/} <data-dir>    e.g. ${0##*/} data/train" >&2
  exit 1
fi
exec python -m mome.data.kaldi fix "$1"
