# Job runners of the recipes (sourced by run.sh). One variable picks the back-end; every stage runs its
# parallel jobs as "$cpu_cmd JOB=1:N log/x.JOB.log command..." (see utils/run_jobs.sh --help).
cmd_backend=${cmd_backend:-local}  # local | slurm

case "$cmd_backend" in
  local)
    cpu_cmd="utils/run_jobs.sh --backend local"
    gpu_cmd="utils/run_jobs.sh --backend local --gpu 1"
    ;;
  slurm)  # adapt memory, time and partition to your cluster
    cpu_cmd="utils/run_jobs.sh --backend slurm --mem 8G --time 12:00:00"
    gpu_cmd="utils/run_jobs.sh --backend slurm --gpu 1 --mem 32G --time 48:00:00"
    ;;
  *)
    echo "cmd.sh: cmd_backend must be local or slurm, got '$cmd_backend'" >&2
    return 1
    ;;
esac
