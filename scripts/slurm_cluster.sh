#!/usr/bin/env bash
# slurm_cluster.sh -- a real single-node SLURM cluster (with accounting) for CI
# and local development on a Debian/Ubuntu machine, run as root, without systemd.
#
# Usage:
#   scripts/slurm_cluster.sh install   # apt-get the packages (skipped if present)
#   scripts/slurm_cluster.sh start     # (re)start munged, mariadb, slurmdbd,
#                                      # slurmctld, slurmd; prints `export SLURM_CONF=...`
#   scripts/slurm_cluster.sh status    # which daemons are alive, sinfo, squeue
#   scripts/slurm_cluster.sh stop      # cancel all jobs, stop every daemon we started
#
#   eval "$(scripts/slurm_cluster.sh start | grep '^export ')"   # for the caller
#
# Everything lives in one state directory (configs, logs, pid files, spool
# directories, the MariaDB datadir):
#   SLURM_CLUSTER_DIR    state directory              [/tmp/ablate-slurm]
#   SLURM_CLUSTER_NAME   ClusterName                  [ablate]
#   SLURM_CLUSTER_MYSQL_PORT  MariaDB TCP port (127.0.0.1 only) [3307]
#   SLURM_CLUSTER_TIMEOUT     seconds to wait for each start-up step [60]
#   SLURM_CLUSTER_DEF_MEM     DefMemPerCPU in MB      [1024]
# The SLURM daemons use their default ports 6817 (slurmctld), 6818 (slurmd)
# and 6819 (slurmdbd), all on 127.0.0.1.
#
# Design notes:
# * All SLURM daemons run as root (SlurmUser=root, SlurmdUser=root), in the
#   foreground (-D) under setsid, so we know their pids and they survive the
#   calling shell; their stdout/stderr go to $DIR/log/*.out.
# * No cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none.
# * No DNS: the node is NodeName=$(hostname -s) NodeAddr=127.0.0.1.
# * Accounting (slurmdbd + MariaDB) is required: without a working `sacct`,
#   submitit cannot see that SLURM killed a job and waits forever.
# * munged uses the system key (/etc/munge/munge.key) and default socket
#   (/run/munge/munge.socket.2), because SLURM's auth/munge uses that socket.
#   An already-running munged is reused and then not stopped by `stop`.
set -euo pipefail

DIR=${SLURM_CLUSTER_DIR:-/tmp/ablate-slurm}
CLUSTER=${SLURM_CLUSTER_NAME:-ablate}
MYSQL_PORT=${SLURM_CLUSTER_MYSQL_PORT:-3307}
TIMEOUT=${SLURM_CLUSTER_TIMEOUT:-60}
DEF_MEM=${SLURM_CLUSTER_DEF_MEM:-1024}

ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
DB_DATA=$DIR/mysql
DB_SOCK=$RUN/mysqld.sock
DB_USER=slurm
DB_PASS=slurm
DB_NAME=slurm_acct_db
NODE=$(hostname -s)
MUNGE_KEY=/etc/munge/munge.key

# Daemons in start order.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

export SLURM_CONF=$ETC/slurm.conf

log() { printf '[slurm_cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --------------------------------------------------------------------- helpers

# pid_of NAME -> pid recorded by us, if that process is still alive.
pid_of() {
    local f=$RUN/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# spawn NAME CMD... : run CMD detached (own session, no tty, output to a log
# file), record its pid in $RUN/NAME.pid.
spawn() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

# wait_for NAME DESCRIPTION LOGFILE CMD... : poll CMD until it succeeds; fail
# (showing the log tail) on timeout or as soon as daemon NAME has exited.
wait_for() {
    local name=$1 what=$2 logfile=$3; shift 3
    local deadline=$((SECONDS + TIMEOUT)) why=""
    until "$@" >/dev/null 2>&1; do
        if ! pid_of "$name" >/dev/null; then
            why="$name exited"
        elif ((SECONDS >= deadline)); then
            why="timed out after ${TIMEOUT}s"
        else
            sleep 0.5
            continue
        fi
        log "$why while waiting for $what; last lines of $logfile:"
        tail -n 20 "$logfile" >&2 2>/dev/null || true
        die "$what did not come up (all logs: $LOG)"
    done
}

# any_alive PID... : true if at least one of the processes exists.
any_alive() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}

# stop_daemons NAME... : SIGTERM the recorded pids together, wait up to 15 s
# for all of them, then SIGKILL whatever is left.
stop_daemons() {
    local name pid pids=() i
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$RUN/$name.pid"
    done
    ((${#pids[@]})) || return 0
    for ((i = 0; i < 60; i++)); do
        any_alive "${pids[@]}" || break
        sleep 0.25
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; }
    done
    return 0
}

# True if process $1 was started by this script for this cluster: every daemon
# (and each slurmstepd, which inherits slurmd's environment) has
# SLURM_CONF=$ETC/slurm.conf in its environment.
ours() {
    tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$ETC/slurm.conf"
}

# Pids of this cluster's daemons and job steps that are still alive after the
# daemons were stopped by pid, plus all descendants (job processes) of the
# steps. Only processes with a daemon's name are considered, so a caller
# that exported the same SLURM_CONF is never matched.
leftovers() {
    local p roots=() all=() kids
    for p in $(pgrep -x 'slurmctld|slurmd|slurmdbd|slurmstepd|mariadbd|munged' 2>/dev/null || true); do
        ours "$p" && roots+=("$p")
    done
    while ((${#roots[@]})); do
        all+=("${roots[@]}")
        kids=$(pgrep -P "$(IFS=,; echo "${roots[*]}")" 2>/dev/null || true)
        # shellcheck disable=SC2206
        roots=($kids)
    done
    ((${#all[@]})) && printf '%s\n' "${all[@]}" | sort -u
    return 0
}

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
mysql_root() { mariadb --no-defaults --protocol=socket --socket="$DB_SOCK" -uroot "$@"; }
node_idle() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == idle ]]; }

# ------------------------------------------------------------------- install

cmd_install() {
    local need=0 c
    for c in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db; do
        command -v "$c" >/dev/null || need=1
    done
    if ((need == 0)); then
        log "SLURM, munge and MariaDB already installed; nothing to do"
        return 0
    fi
    log "installing slurm, munge, mariadb via apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq \
        slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
    log "installed: $(slurmctld -V)"
}

# ------------------------------------------------------------------- configs

write_configs() {
    # Hardware as slurmd detects it; RealMemory a little below what it reports
    # (5% or at least 512 MB), otherwise the node can be drained as "low memory".
    local hw cpus boards sockets cores threads mem
    hw=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    boards=$(sed -n 's/.* Boards=\([0-9]*\).*/\1/p' <<<"$hw")
    sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    [[ -n $cpus && -n $mem ]] || die "cannot parse \`slurmd -C\`: $hw"
    local margin=$((mem / 20 > 512 ? mem / 20 : 512))
    mem=$((mem - margin))

    cat >"$ETC/slurm.conf" <<EOF
# Generated by scripts/slurm_cluster.sh -- single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none

# No cgroups in containers: track processes via /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none

StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$RUN/slurmctld.daemon.pid
SlurmdPidFile=$RUN/slurmd.daemon.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# Scheduling: per-core and per-memory allocation, so 1-CPU jobs share the node.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM

# Fast, predictable job ends: enforce time limits exactly, short grace period.
OverTimeLimit=0
KillWait=5
MinJobAge=300
InactiveLimit=0
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30

# Accounting through slurmdbd (needed for sacct, which submitit relies on).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none

NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

    # slurmdbd reads slurmdbd.conf next to slurm.conf; it must be mode 600 and
    # owned by SlurmUser (root).
    cat >"$ETC/slurmdbd.conf" <<EOF
# Generated by scripts/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$RUN/slurmdbd.daemon.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    chmod 600 "$ETC/slurmdbd.conf"
    log "configs written to $ETC (node $NODE: $cpus CPUs, RealMemory=$mem MB, DefMemPerCPU=$DEF_MEM MB)"
}

# --------------------------------------------------------------------- start

start_munge() {
    if munge_ok; then
        log "munged already running; reusing it"
        return 0
    fi
    # Packages create the key; make one if it is missing.
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating $MUNGE_KEY"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /etc/munge "$MUNGE_KEY" /run/munge /var/log/munge /var/lib/munge
    chmod 700 /etc/munge
    chmod 400 "$MUNGE_KEY"
    chmod 755 /run/munge
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged"
    # setpriv execs munged directly, so the recorded pid is munged's own.
    spawn munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground
    wait_for munged munged /var/log/munge/munged.log munge_ok
}

start_mariadb() {
    if [[ ! -d $DB_DATA/mysql ]]; then
        log "initialising MariaDB datadir $DB_DATA"
        mkdir -p "$DB_DATA"
        mariadb-install-db --no-defaults --user=root --datadir="$DB_DATA" \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install-db.out" 2>&1 ||
            { tail -n 30 "$LOG/mariadb-install-db.out" >&2; die "mariadb-install-db failed"; }
    fi
    log "starting mariadbd on 127.0.0.1:$MYSQL_PORT"
    spawn mariadbd mariadbd --no-defaults --user=root --datadir="$DB_DATA" \
        --socket="$DB_SOCK" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
        --pid-file="$RUN/mariadbd.daemon.pid" --log-error="$LOG/mariadbd.log" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        --skip-name-resolve
    wait_for mariadbd mariadbd "$LOG/mariadbd.log" mysql_root -e 'SELECT 1'
    mysql_root --batch <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    log "starting slurmdbd"
    spawn slurmdbd slurmdbd -D
    # Ready when sacctmgr can talk to it.
    wait_for slurmdbd slurmdbd "$LOG/slurmdbd.log" sacctmgr -n -P show cluster format=cluster
    # The cluster must be registered before slurmctld starts.
    if ! sacctmgr -n -P show cluster format=cluster | grep -qxF "$CLUSTER"; then
        log "registering cluster $CLUSTER"
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
}

start_slurm() {
    log "starting slurmctld"
    spawn slurmctld slurmctld -D -f "$ETC/slurm.conf"
    wait_for slurmctld slurmctld "$LOG/slurmctld.log" scontrol ping
    log "starting slurmd"
    spawn slurmd slurmd -D -f "$ETC/slurm.conf"
    wait_for slurmd "node $NODE to become idle" "$LOG/slurmd.log" node_idle
}

cmd_start() {
    local t0ns
    t0ns=$(date +%s%N)
    command -v slurmctld >/dev/null || die "SLURM is not installed; run: $0 install"
    [[ $EUID -eq 0 ]] || die "must run as root"

    # Idempotent: tear down whatever is left from a previous start.
    if [[ -d $RUN ]] && ls "$RUN"/*.pid >/dev/null 2>&1; then
        log "previous cluster state found in $DIR; stopping it first"
        cmd_stop
    fi

    mkdir -p "$ETC" "$LOG" "$RUN" "$DIR/spool/ctld" "$DIR/spool/d"
    # On any failure below, stop what was started (logs stay in $LOG).
    trap 'rc=$?; if ((rc)); then log "start failed; stopping what was started"; cmd_stop || true; fi' EXIT
    write_configs
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurm

    trap - EXIT
    local ms=$((($(date +%s%N) - t0ns) / 1000000))
    log "cluster '$CLUSTER' up in $((ms / 1000)).$(printf %03d $((ms % 1000)))s; logs in $LOG"
    sinfo >&2
    echo "export SLURM_CONF=$ETC/slurm.conf"
}

# ---------------------------------------------------------------------- stop

cmd_stop() {
    local i pids=()
    # 1. Cancel every job while the controller still runs, so slurmstepd can
    #    clean up and the accounting records the jobs as CANCELLED.
    if pid_of slurmctld >/dev/null && scontrol ping >/dev/null 2>&1; then
        if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
            log "cancelling all jobs"
            scancel --full -u root 2>/dev/null || true
            scancel -u root 2>/dev/null || true
            scancel --full --state=PENDING 2>/dev/null || true
            for ((i = 0; i < 40; i++)); do # up to 20 s (KillWait=5)
                [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.5
            done
            [[ -n $(squeue -h -o %i 2>/dev/null) ]] && log "some jobs still listed; killing them with the daemons"
        fi
    fi

    # 2. Daemons by recorded pid, in reverse start order; slurmctld still
    #    reports to slurmdbd while it shuts down, slurmdbd still needs MariaDB.
    stop_daemons slurmd slurmctld
    stop_daemons slurmdbd
    stop_daemons mariadbd munged

    # 3. Leftovers: job steps of this cluster, and daemons that lost their pid file.
    mapfile -t pids < <(leftovers)
    if ((${#pids[@]})); then
        log "killing leftover processes: ${pids[*]}"
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    rm -f "$RUN"/*.pid "$DB_SOCK"
    log "stopped"
}

# -------------------------------------------------------------------- status

# Exit status 0 only if all daemons are alive.
cmd_status() {
    local d pid rc=0
    for d in "${DAEMONS[@]}"; do
        if pid=$(pid_of "$d"); then
            printf '%-10s running (pid %s)\n' "$d" "$pid"
        elif [[ $d == munged ]] && munge_ok; then
            printf '%-10s running (not started by this script)\n' "$d"
        else
            printf '%-10s not running\n' "$d"
            rc=1
        fi
    done
    echo "SLURM_CONF=$ETC/slurm.conf"
    if [[ -f $ETC/slurm.conf ]] && scontrol ping >/dev/null 2>&1; then
        echo "--- sinfo"
        sinfo
        echo "--- squeue"
        squeue
    else
        echo "slurmctld not reachable"
    fi
    return $rc
}

# ---------------------------------------------------------------------- main

case ${1:-} in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
