#!/usr/bin/env bash
# Start a single-node SLURM (slurmctld + slurmd + munged) on this machine for the `slurm` tests.
#
# Installs slurm-wlm and munge from Debian when absent (needs root: CI containers run as root),
# writes a slurm.conf matching this node's CPUs and memory, starts munged, slurmctld and slurmd,
# and waits until `srun -N1 true` works. Idempotent: when SLURM already answers, it does nothing.
# No accounting database: the workflow profile must use `slurm-status-command: squeue` and
# `slurm-no-account: true` (see docs/hpc.md).
#
# Environment: SLURM_CONF_DIR (default /etc/slurm), SLURM_STATE_DIR (default /var/spool/alignpatterns-slurm).
set -euo pipefail

CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
STATE=${SLURM_STATE_DIR:-/var/spool/alignpatterns-slurm}
log() { echo "start_slurm: $*" >&2; }

if timeout 30 srun -N1 true 2>/dev/null; then
    log "SLURM already answers (srun -N1 true)"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "SLURM is not running and starting it needs root (apt-get, munged, slurmd)"
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge ---------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create; else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
fi
munge -n | unmunge >/dev/null || { log "munged does not answer"; exit 1; }

# --- slurm.conf from this node's CPUs and memory -------------------------------------------------
CPUS=$(nproc)
# RealMemory a little below the total so slurmd never marks the node invalid
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.95)}' /proc/meminfo)
mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" /var/log/slurm
cat > "$CONF_DIR/slurm.conf" <<CONF
# Written by tests/slurm/start_slurm.sh: one node, no accounting, no cgroups.
ClusterName=alignpatterns
SlurmctldHost=localhost
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
# finished jobs stay visible to squeue, which the executor uses instead of sacct
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE DefMemPerCPU=500 State=UP
CONF
log "slurm.conf: CPUs=$CPUS RealMemory=$MEM_MB"

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if timeout 30 srun -N1 true 2>/dev/null; then
        log "ready: $(sinfo -h -o '%N %c CPUs %m MB %T')"
        exit 0
    fi
    scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    sleep 1
done
log "srun -N1 true still fails; see /var/log/slurm/slurmctld.log and slurmd.log"
exit 1
