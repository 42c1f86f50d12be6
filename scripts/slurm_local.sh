#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for `make test-slurm`:
#   scripts/slurm_local.sh start    install what is missing (Debian packages), write the configs,
#                                   start munged, MariaDB, slurmdbd, slurmctld and slurmd, wait
#                                   until the node is idle; does nothing when they already run
#   scripts/slurm_local.sh stop     stop them (configs, logs and accounting stay for the next start)
#   scripts/slurm_local.sh status   which daemons run, and `sinfo`
# Everything it writes is under $SLURM_LOCAL_DIR (default /tmp/flowcf-slurm): configs, munge key,
# state, spool, logs (log/), the MariaDB data; only munged's socket is where SLURM looks for it
# (/run/munge). Clients find the cluster with
#   export SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf
# Accounting (slurmdbd on MariaDB) is there because submitit polls `sacct` for job states: without
# it a job that dies outside Python (killed, out of memory, cancelled) leaves the sweep waiting.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/flowcf-slurm}
DB_PORT=${SLURM_LOCAL_DB_PORT:-6820}
NODE=$(hostname -s)
export SLURM_CONF=$DIR/slurm.conf
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order; stop goes backwards

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null || true; }
running() { local pid; pid=$(pid_of "$1"); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

wait_for() {  # wait_for <what> <seconds> <command...>: retries the command until it succeeds
    local what=$1 seconds=$2 i
    shift 2
    for ((i = 0; i < 10 * seconds; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "slurm_local: $what did not come up within ${seconds}s; see $DIR/log/" >&2
    return 1
}

install_packages() {
    local binary missing=0
    for binary in slurmctld slurmd slurmdbd munged mariadbd sacct; do
        command -v "$binary" >/dev/null || missing=1
    done
    if ((missing)); then
        echo "slurm_local: installing ${PACKAGES[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q "${PACKAGES[@]}"
    fi
}

write_configs() {
    mkdir -p "$DIR"/{munge,run,log,state,spool,mysql}
    chmod 700 "$DIR/munge"
    [[ -f $DIR/munge/munge.key ]] || mungekey --create --keyfile="$DIR/munge/munge.key"
    local memory
    memory=$(free -m | awk '/^Mem:/ {print $2}')
    cat >"$SLURM_CONF" <<EOF
# One node: this machine ($(nproc) CPUs, $memory MB), written by scripts/slurm_local.sh
ClusterName=flowcf
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/slurmdbd.conf"
}

start_munged() {
    mkdir -p /run/munge
    munged --force --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --seed-file="$DIR/munge/munged.seed" \
        --log-file="$DIR/log/munged.log"
    wait_for munged 10 munge -n
}

sql() { mariadb --no-defaults --socket="$DIR/run/mysqld.sock" -u root -e "$1"; }

start_mariadbd() {
    if [[ ! -d $DIR/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root \
            --auth-root-authentication-method=normal --skip-test-db >"$DIR/log/mariadb-install.log"
    fi
    mariadbd --no-defaults --datadir="$DIR/mysql" --user=root --socket="$DIR/run/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$DIR/run/mariadbd.pid" --log-error="$DIR/log/mariadb.log" \
        </dev/null >>"$DIR/log/mariadb.log" 2>&1 &
    wait_for MariaDB 60 sql "SELECT 1"
    sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
    slurmdbd
    wait_for slurmdbd 60 sacctmgr -n list cluster
}

start_slurmctld() {
    slurmctld
    wait_for slurmctld 60 scontrol ping
}

start_slurmd() {
    slurmd
}

node_state() { sinfo -h -n "$NODE" -o %T; }

start() {
    install_packages
    write_configs
    local daemon
    for daemon in "${DAEMONS[@]}"; do
        running "$daemon" || "start_$daemon"
    done
    # a node that was down when the cluster last stopped comes back
    if [[ $(node_state) == down* || $(node_state) == drain* ]]; then
        scontrol update nodename="$NODE" state=resume
    fi
    wait_for "node $NODE idle" 60 bash -c "[[ \$(sinfo -h -n $NODE -o %T) == idle ]]"
    echo "slurm_local: up; export SLURM_CONF=$SLURM_CONF"
}

stop() {
    local daemon pid
    for daemon in $(printf '%s\n' "${DAEMONS[@]}" | tac); do
        if running "$daemon"; then
            pid=$(pid_of "$daemon")
            kill "$pid"
            wait_for "the end of $daemon" 60 bash -c "! kill -0 $pid"
        fi
    done
    echo "slurm_local: stopped"
}

status() {
    local daemon
    for daemon in "${DAEMONS[@]}"; do
        if running "$daemon"; then echo "$daemon: running"; else echo "$daemon: stopped"; fi
    done
    if running slurmctld; then sinfo; fi
}

case ${1:-} in
start | stop | status) "$1" ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
