# shellcheck shell=bash disable=SC2034
# Settings shared by slurm-start.sh and slurm-stop.sh (sourced, not run). Each can be set from the
# environment. Everything the cluster writes lives under SIMWATT_SLURM_DIR.

SIMWATT_SLURM_DIR=${SIMWATT_SLURM_DIR:-/tmp/simwatt-slurm}
SIMWATT_SLURM_CLUSTER=${SIMWATT_SLURM_CLUSTER:-simwattci}
SIMWATT_SLURM_CTLD_PORT=${SIMWATT_SLURM_CTLD_PORT:-6817}
SIMWATT_SLURM_SLURMD_PORT=${SIMWATT_SLURM_SLURMD_PORT:-6818}
SIMWATT_SLURM_NODE=${SIMWATT_SLURM_NODE:-localhost}
SIMWATT_SLURM_PARTITION=${SIMWATT_SLURM_PARTITION:-debug}
# More slots than cores is fine for the small shards of the tests (SlurmdParameters=config_overrides).
SIMWATT_SLURM_CPUS=${SIMWATT_SLURM_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}
SIMWATT_SLURM_START_TIMEOUT=${SIMWATT_SLURM_START_TIMEOUT:-60}

SW_ETC=$SIMWATT_SLURM_DIR/etc
SW_RUN=$SIMWATT_SLURM_DIR/run
SW_LOG=$SIMWATT_SLURM_DIR/log
SW_MUNGE=$SIMWATT_SLURM_DIR/munge
SW_CONF=$SW_ETC/slurm.conf
SW_MUNGE_SOCKET=$SW_MUNGE/munge.socket
SW_MARKER="# managed-by: simwatt .ci/slurm-start.sh; safe to delete"

export SLURM_CONF=$SW_CONF

sw_log() { printf '[slurm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
sw_die() { sw_log "ERROR: $*"; exit 1; }

# sw_alive PID: the process exists and is not a zombie (PID 1 here may reap late).
sw_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# sw_pid_ok NAME PIDFILE: PIDFILE holds the pid of a live process running the NAME binary
# (so a recycled pid is never mistaken for ours).
sw_pid_ok() {
  local name=$1 pidfile=$2 pid exe want
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  sw_alive "$pid" || return 1
  exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
  want=$(readlink -f "$(command -v "$name" 2>/dev/null || echo "/usr/sbin/$name")")
  [ "$exe" = "$want" ]
}

# sw_stop_pid NAME PIDFILE: SIGTERM the recorded pid if it is really NAME, wait up to 15 s, then
# SIGKILL; remove the pidfile.
sw_stop_pid() {
  local name=$1 pidfile=$2 pid
  if sw_pid_ok "$name" "$pidfile"; then
    pid=$(cat "$pidfile")
    sw_log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      sw_alive "$pid" || break
      sleep 0.1
    done
    if sw_alive "$pid"; then
      sw_log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}
