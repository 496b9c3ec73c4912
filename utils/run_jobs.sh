#!/usr/bin/env bash
# Run a command as N parallel jobs, locally or on Slurm (the one job runner of the recipes; cmd.sh
# picks its back-end).
set -uo pipefail

help_message="Usage: ${0##*/} [options] [JOB=1:N] LOGDIR/name.JOB.log command args...
Runs 'command args...' once per value of JOB (1..N), replacing the string JOB in the log path and in
every argument; stdout and stderr of job j go to LOGDIR/name.j.log. Without JOB=a:b it runs once.
Waits for all jobs; exits 1 naming the logs of the failed ones. The command runs as given, without a
shell: for pipes or redirections run 'bash -c \"...\"'.
Options:
  --backend local|slurm   where to run (default: local)
  --max_jobs K            local: at most K jobs at a time (default 0: all at once)
  --gpu N                 slurm: GPUs per job (--gres=gpu:N); local: ignored (default 0)
  --mem X                 slurm: memory per job, e.g. 16G (default: the cluster's)
  --time T                slurm: time limit per job, e.g. 4:00:00 (default: the cluster's)
  --slurm_opts \"...\"      slurm: more sbatch options, e.g. \"--partition gpu --account me\""

backend=local
max_jobs=0
gpu=0
mem=
time=
slurm_opts=
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

die() { echo "${0##*/}: $*" >&2; exit 1; }

case "$backend" in local | slurm) ;; *) die "--backend must be local or slurm, got '$backend'" ;; esac
[[ "$max_jobs" =~ ^[0-9]+$ ]] || die "--max_jobs must be a number, got '$max_jobs'"
[[ "$gpu" =~ ^[0-9]+$ ]] || die "--gpu must be a number, got '$gpu'"

var=
first=1
last=1
if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}
  first=${BASH_REMATCH[2]}
  last=${BASH_REMATCH[3]}
  shift
  ((first <= last)) || die "empty job range $var=$first:$last"
elif [[ $# -gt 0 && "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
  die "bad job range '$1' (expected NAME=first:last, e.g. JOB=1:4)"
fi
[ $# -ge 2 ] || die "need a log file and a command (see --help)"
log_template=$1
shift
if [ -n "$var" ] && ((last > first)) && [[ "$log_template" != *"$var"* ]]; then
  die "log path '$log_template' must contain $var, or the $((last - first + 1)) jobs overwrite one log"
fi

# The command of job $1 as one shell-quoted string, with $var replaced.
job_command() {
  local arg out=""
  for arg in "$@"; do
    [ -n "$var" ] && arg=${arg//$var/$job}
    out+=$(printf '%q ' "$arg")
  done
  echo "$out"
}

# The script a job runs: a header, the command, a footer with its exit code (what Kaldi's logs show).
job_script() {
  local cmd
  cmd=$(job_command "$@")
  printf '%s\n' \
    "echo \"# $(printf '%s' "$cmd" | sed 's/[\\"$`]/\\&/g')\"" \
    'echo "# Started at $(date) on $(hostname)"' \
    'SECONDS=0' \
    "$cmd" \
    'rc=$?' \
    'echo "# Accounting: time=$SECONDS s"' \
    'echo "# Ended (code $rc) at $(date)"' \
    'exit $rc'
}

declare -A pid_of_job=()
logs=()
for ((job = first; job <= last; job++)); do
  log=$log_template
  [ -n "$var" ] && log=${log//$var/$job}
  mkdir -p "$(dirname "$log")" || die "cannot create the log folder of $log"
  logs[job]=$log
  script=$(job_script "$@")
  if [ "$backend" = local ]; then
    if ((max_jobs > 0)); then
      while (($(jobs -rp | wc -l) >= max_jobs)); do wait -n; done
    fi
    bash -c "$script" >"$log" 2>&1 &
  else
    command -v sbatch >/dev/null || die "--backend slurm: sbatch not found on PATH"
    opts=(--wait --quiet --job-name "${log##*/}" --output "$log" --open-mode truncate)
    ((gpu > 0)) && opts+=(--gres "gpu:$gpu")
    [ -n "$mem" ] && opts+=(--mem "$mem")
    [ -n "$time" ] && opts+=(--time "$time")
    # shellcheck disable=SC2206
    [ -n "$slurm_opts" ] && opts+=($slurm_opts)
    sbatch "${opts[@]}" --wrap "$script" &
  fi
  pid_of_job[$job]=$!
done

failed=()
for ((job = first; job <= last; job++)); do
  wait "${pid_of_job[$job]}" || failed+=("${logs[job]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "${0##*/}: ${#failed[@]} of $((last - first + 1)) jobs failed, see: ${failed[*]}" >&2
  for log in "${failed[@]}"; do
    [ -f "$log" ] && { echo "--- last lines of $log:" >&2; tail -n 5 "$log" >&2; }
  done
  exit 1
fi
exit 0
