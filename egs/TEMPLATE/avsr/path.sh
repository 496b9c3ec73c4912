# Environment of the recipes (sourced by run.sh): the project's virtual environment (the package is
# installed there in editable mode by tools/install.sh), the utils on PATH, C sorting, unbuffered Python.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
if [ ! -f "$MAIN_ROOT/tools/venv/bin/activate" ]; then
  echo "path.sh: $MAIN_ROOT/tools/venv is missing: run tools/install.sh first" >&2
  return 1
fi
. "$MAIN_ROOT/tools/venv/bin/activate"
export PATH="$MAIN_ROOT/utils:$PATH"
export LC_ALL=C
export PYTHONUNBUFFERED=1
# one BLAS thread per process: on a small shared machine more threads make torch much slower; jobs
# parallelise across processes (--nj, --nproc) instead. Set OMP_NUM_THREADS yourself to override.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
