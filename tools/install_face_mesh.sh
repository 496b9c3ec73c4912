#!/usr/bin/env bash
# MediaPipe's face mesh in an environment of its own (tools/venv-mediapipe): the face landmark detector for
# videos that come without landmark files (mome/data/face_mesh.py runs it as a subprocess; stage 2's
# `--landmarks detect`, AVSR2Text.transcribe_file on any video).
#
#   tools/install_face_mesh.sh              # tools/install.sh --all runs it too
#   MOME_FACE_MESH_VENV=DIR PYTHON=python3.12 tools/install_face_mesh.sh
#
# Why its own environment: mediapipe 0.10.21 is the last release whose wheel holds the face detection and face
# mesh models (later ones download them at run time, which cannot work offline); it declares numpy<2 (ESPnet
# needs numpy>=2) and breaks with protobuf 7. Its wheel is installed without its declared dependencies, which
# pull jax, jaxlib, sentencepiece, sounddevice and opencv-contrib (about 1 GB, 1m46s here) for parts we do not
# use (the LLM converter, audio); the face solutions need only the list below. scikit-image rides along for
# the tests' face (skimage.data.astronaut()). Re-running it is quick: nothing is done when the stamp matches.
set -euo pipefail

tools_dir=$(cd "$(dirname "$0")" && pwd)
venv=${MOME_FACE_MESH_VENV:-$tools_dir/venv-mediapipe}
python=${PYTHON:-python3}
mediapipe_spec="mediapipe==0.10.21"
deps=("numpy>=1.24,<2" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers "opencv-python-headless<4.12"
      matplotlib scikit-image)

log() { echo "[install_face_mesh] $*"; }
die() { echo "[install_face_mesh] error: $*" >&2; exit 1; }

stamp="$venv/.mome-face-mesh-stamp"
want="$mediapipe_spec|$(sha1sum "$tools_dir/install_face_mesh.sh" | cut -c1-12)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "face mesh environment up to date ($venv)"
  exit 0
fi

# mediapipe 0.10.21 has wheels for CPython 3.9-3.12 on x86_64 / aarch64 Linux, macOS and Windows
version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null) \
  || die "cannot run '$python' (set PYTHON to a Python 3.9-3.12)"
case "$version" in
  3.9|3.10|3.11|3.12) ;;
  *) die "$mediapipe_spec has wheels for Python 3.9-3.12 only, '$python' is $version: set PYTHON=python3.12 (or 3.11)" ;;
esac

began=$SECONDS
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv (Python $version)"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
log "$mediapipe_spec (its wheel only) and ${deps[*]}"
if ! "${pip[@]}" --no-deps "$mediapipe_spec" || ! "${pip[@]}" "${deps[@]}"; then
  die "could not install $mediapipe_spec and its dependencies from the package registry (see pip's message above; \
no network?). Without them, videos need landmark files; re-run tools/install_face_mesh.sh when the registry is reachable"
fi

log "(pip may report that mediapipe requires jax, jaxlib, opencv-contrib-python, sentencepiece, sounddevice: expected, see above)"

# the models must load from the wheel, with no download (mediapipe's C++ logging is shown only on failure)
check=$(GLOG_minloglevel=2 "$venv/bin/python" - 2>&1 <<'PY'
import mediapipe as mp
mp.solutions.face_detection.FaceDetection(model_selection=1).close()
mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1).close()
import skimage.data
assert skimage.data.astronaut().shape == (512, 512, 3)
print(f"[install_face_mesh] ok: mediapipe {mp.__version__}, face detection and face mesh models load")
PY
) || { echo "$check" >&2; die "$venv: mediapipe does not load its face models (above)"; }
echo "$check" | grep '^\[install_face_mesh\]'
echo "$want" > "$stamp"
log "done in $((SECONDS - began)) s"
