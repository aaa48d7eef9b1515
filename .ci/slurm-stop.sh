#!/usr/bin/env bash
# Stops the cluster .ci/slurm-start.sh started: cancels its jobs, then stops slurmd, slurmctld and
# munged through the pids start recorded (each checked to still be that binary; nothing is killed
# by name). --purge also deletes SIMWATT_SLURM_DIR and the /etc/slurm/slurm.conf written by start;
# --quiet says nothing when nothing was running. Idempotent.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=slurm-common.sh
. "$HERE/slurm-common.sh"

purge=0 quiet=0
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    --quiet) quiet=1 ;;
    *) sw_die "unknown argument $a (use --purge, --quiet)" ;;
  esac
done

if sw_pid_ok slurmctld "$SW_RUN/slurmctld.pid" && command -v squeue >/dev/null; then
  jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
  if [ -n "${jobs// /}" ]; then
    sw_log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
fi

any=0
for d in slurmd slurmctld munged; do
  if sw_pid_ok "$d" "$SW_RUN/$d.pid"; then any=1; fi
  sw_stop_pid "$d" "$SW_RUN/$d.pid"
done
[ $any = 1 ] || [ $quiet = 1 ] || sw_log "nothing of ours was running"

if [ $purge = 1 ]; then
  if grep -qF "$SW_MARKER" /etc/slurm/slurm.conf 2>/dev/null; then rm -f /etc/slurm/slurm.conf; fi
  case "$SIMWATT_SLURM_DIR" in
    /|/tmp|/var|/etc|"") sw_die "refusing to purge SIMWATT_SLURM_DIR=$SIMWATT_SLURM_DIR" ;;
  esac
  rm -rf "$SIMWATT_SLURM_DIR"
  sw_log "purged $SIMWATT_SLURM_DIR"
fi
