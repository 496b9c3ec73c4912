#!/usr/bin/env bash
# Check a Kaldi-style data directory (sorting, duplicate ids, files agreeing, utt ids prefixed by their
# speaker, non-empty transcripts, segment times, recordings); the work is done by mome.data.kaldi.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "Usage: ${0##*/} <data-dir>    e.g. ${0##*/} data/train" >&2
  exit 1
fi
exec python -m mome.data.kaldi validate "$1"
