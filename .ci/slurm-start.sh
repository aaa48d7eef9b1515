#!/usr/bin/env bash
# Brings up a one-node Slurm cluster on 127.0.0.1 for the sweep integration test, without systemd:
# Debian's slurmctld, slurmd and slurm-client with a private munged. Installs the packages with
# apt-get when they are missing. Idempotent: when the cluster is already up with the same config it
# does nothing; when something is missing or unhealthy it stops what it started and starts clean.
# Afterwards `. $SIMWATT_SLURM_DIR/env.sh` exports SLURM_CONF (a copy also goes to
# /etc/slurm/slurm.conf when that file is absent or was written here, so plain sbatch works).
# Needs root. Settings: .ci/slurm-common.sh. Stop with .ci/slurm-stop.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=slurm-common.sh
. "$HERE/slurm-common.sh"

[ "$(id -u)" = 0 ] || sw_die "run as root (apt-get, munged as the munge user, slurmd)"
t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# -- 1. packages
need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  sw_log "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' scripts from starting the services (no systemd here; a second munged on
  # /run/munge would not help either).
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  apt_log=${TMPDIR:-/tmp}/simwatt-slurm-apt.log
  apt-get update -q >"$apt_log" 2>&1 || { tail -20 "$apt_log" >&2; sw_die "apt-get update failed"; }
  apt-get install -y -q --no-install-recommends "${need[@]}" >>"$apt_log" 2>&1 \
    || { tail -30 "$apt_log" >&2; sw_die "apt-get install failed"; }
  if [ $policy_created = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# Not `sinfo -V`: every Slurm client parses slurm.conf first and waits 60 s when it is missing.
version=$(dpkg-query -W -f '${Version}' slurm-client 2>/dev/null || echo unknown)

# -- 2. config
gen_conf() {
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {printf "%d", $2/1024*0.9}' /proc/meminfo)
  cat <<CONF
$SW_MARKER
# One-node Slurm cluster on localhost for simwatt's CI.
ClusterName=$SIMWATT_SLURM_CLUSTER
# SlurmctldHost must name this host; the literal localhost is accepted whatever hostname says.
SlurmctldHost=localhost
SlurmctldPort=$SIMWATT_SLURM_CTLD_PORT
SlurmdPort=$SIMWATT_SLURM_SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SW_MUNGE_SOCKET
StateSaveLocation=$SIMWATT_SLURM_DIR/ctld
SlurmdSpoolDir=$SIMWATT_SLURM_DIR/spool
SlurmctldPidFile=$SW_RUN/slurmctld.daemon.pid
SlurmdPidFile=$SW_RUN/slurmd.daemon.pid
SlurmctldLogFile=$SW_LOG/slurmctld.log
SlurmdLogFile=$SW_LOG/slurmd.log
# No systemd and no cgroups: processes tracked through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd (so no sacct): finished jobs stay visible to scontrol for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$SW_LOG/jobcomp.txt
MinJobAge=600
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldTimeout=60
SlurmdTimeout=60
NodeName=$SIMWATT_SLURM_NODE NodeAddr=127.0.0.1 CPUs=$SIMWATT_SLURM_CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=$SIMWATT_SLURM_PARTITION Nodes=$SIMWATT_SLURM_NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}
mkdir -p "$SIMWATT_SLURM_DIR"
gen_conf >"$SIMWATT_SLURM_DIR/.slurm.conf.new"

healthy() {
  sw_pid_ok munged "$SW_RUN/munged.pid" || return 1
  sw_pid_ok slurmctld "$SW_RUN/slurmctld.pid" || return 1
  sw_pid_ok slurmd "$SW_RUN/slurmd.pid" || return 1
  scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  sinfo -h -n "$SIMWATT_SLURM_NODE" -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)$'
}
if [ -f "$SW_CONF" ] && cmp -s "$SW_CONF" "$SIMWATT_SLURM_DIR/.slurm.conf.new" && healthy; then
  rm -f "$SIMWATT_SLURM_DIR/.slurm.conf.new"
  sw_log "already running (Slurm $version); nothing to do"
  exit 0
fi
if compgen -G "$SW_RUN/*.pid" >/dev/null; then
  sw_log "a previous cluster is partial, unhealthy or configured differently; stopping it first"
  "$HERE/slurm-stop.sh" --quiet || true
fi

rm -rf "$SIMWATT_SLURM_DIR/ctld" "$SIMWATT_SLURM_DIR/spool" "$SW_LOG"
mkdir -p "$SW_ETC" "$SW_RUN" "$SW_LOG" "$SIMWATT_SLURM_DIR/ctld" "$SIMWATT_SLURM_DIR/spool"
chmod 755 "$SIMWATT_SLURM_DIR"
for port in "$SIMWATT_SLURM_CTLD_PORT" "$SIMWATT_SLURM_SLURMD_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    sw_die "port $port on 127.0.0.1 is in use (another Slurm?); set SIMWATT_SLURM_CTLD_PORT / SIMWATT_SLURM_SLURMD_PORT"
  fi
done
mv "$SIMWATT_SLURM_DIR/.slurm.conf.new" "$SW_CONF"
if [ ! -e /etc/slurm/slurm.conf ] || grep -qF "$SW_MARKER" /etc/slurm/slurm.conf 2>/dev/null; then
  mkdir -p /etc/slurm && cp "$SW_CONF" /etc/slurm/slurm.conf
else
  sw_log "note: /etc/slurm/slurm.conf is not ours; use: export SLURM_CONF=$SW_CONF"
fi
echo "export SLURM_CONF=$SW_CONF" >"$SIMWATT_SLURM_DIR/env.sh"

# -- 3. a private munged (own key and socket, so it cannot clash with a system one)
mkdir -p "$SW_MUNGE"
[ -s "$SW_MUNGE/munge.key" ] || dd if=/dev/urandom of="$SW_MUNGE/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$SW_MUNGE"
chmod 755 "$SW_MUNGE"
chmod 400 "$SW_MUNGE/munge.key"
rm -f "$SW_MUNGE_SOCKET" "$SW_MUNGE_SOCKET.lock"
setsid setpriv --reuid=munge --regid=munge --init-groups -- \
  /usr/sbin/munged --foreground --socket="$SW_MUNGE_SOCKET" --key-file="$SW_MUNGE/munge.key" \
    --log-file="$SW_MUNGE/munged.log" --pid-file="$SW_MUNGE/munged.pid" --seed-file="$SW_MUNGE/munged.seed" \
    </dev/null >>"$SW_LOG/munged.out" 2>&1 &
echo $! >"$SW_RUN/munged.pid"
for _ in $(seq 1 100); do [ -S "$SW_MUNGE_SOCKET" ] && break; sleep 0.1; done
sw_pid_ok munged "$SW_RUN/munged.pid" || { cat "$SW_LOG/munged.out" >&2 || true; sw_die "munged did not start"; }
munge -n --socket="$SW_MUNGE_SOCKET" | unmunge --socket="$SW_MUNGE_SOCKET" >/dev/null \
  || sw_die "munge credential round trip failed"

# -- 4. slurmctld and slurmd, in the foreground under setsid so that $! is the daemon's own pid
setsid /usr/sbin/slurmctld -D -c -f "$SW_CONF" </dev/null >>"$SW_LOG/slurmctld.out" 2>&1 &
echo $! >"$SW_RUN/slurmctld.pid"
for _ in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
sw_pid_ok slurmctld "$SW_RUN/slurmctld.pid" || { tail -30 "$SW_LOG/slurmctld.log" >&2 || true; sw_die "slurmctld did not start"; }
setsid /usr/sbin/slurmd -D -N "$SIMWATT_SLURM_NODE" -f "$SW_CONF" </dev/null >>"$SW_LOG/slurmd.out" 2>&1 &
echo $! >"$SW_RUN/slurmd.pid"

# -- 5. wait for the node
deadline=$(( $(date +%s) + SIMWATT_SLURM_START_TIMEOUT ))
while :; do
  state=$(sinfo -h -n "$SIMWATT_SLURM_NODE" -o '%T' 2>/dev/null || true)
  [ "$state" = idle ] && break
  if ! sw_pid_ok slurmd "$SW_RUN/slurmd.pid" || ! sw_pid_ok slurmctld "$SW_RUN/slurmctld.pid"; then
    tail -20 "$SW_LOG/slurmd.log" "$SW_LOG/slurmctld.log" >&2 2>/dev/null || true
    sw_die "a Slurm daemon exited during start-up (logs in $SW_LOG)"
  fi
  if [ "$(date +%s)" -ge $deadline ]; then
    scontrol show node "$SIMWATT_SLURM_NODE" >&2 || true
    sw_die "node $SIMWATT_SLURM_NODE not idle after ${SIMWATT_SLURM_START_TIMEOUT} s (state '$state')"
  fi
  sleep 0.2
done
sw_log "Slurm $version up in $(elapsed "$t0") s: node $SIMWATT_SLURM_NODE idle with $SIMWATT_SLURM_CPUS CPUs; SLURM_CONF=$SW_CONF"
