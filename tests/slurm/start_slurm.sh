#!/usr/bin/env bash
# start_slurm.sh DIR -- a private single-node Slurm cluster for the tests (tests/slurm/test_slurm_real.c).
#
# Everything lives in DIR (created; must be an absolute path without spaces): a fresh munge key and
# socket, slurm.conf for this host (one node as `slurmd -C` describes it, one partition `rwkvlab`),
# the controller's state, slurmd's spool, the daemons' pid files and logs. Nothing in /etc is read or
# changed: clients use it with SLURM_CONF=DIR/slurm.conf. The daemons listen on two free TCP ports
# from 16817 up (RWKVLAB_SLURM_PORT to start elsewhere). Stop it with stop_slurm.sh DIR.
#
# Exit status: 0 the node is idle and accepts jobs (DIR/env holds `export SLURM_CONF=...`);
# 77 Slurm cannot run here (not root, or a package missing): the reason on stderr, nothing started;
# 1 the daemons did not come up (the reason and the ends of their logs on stderr; all stopped again).
set -u
D=${1:?usage: start_slurm.sh DIR (an absolute path)}
HERE=$(cd "$(dirname "$0")" && pwd)
say() { echo "start_slurm: $*" >&2; }
case $D in
/*) ;;
*) say "DIR '$D' is not an absolute path"; exit 1 ;;
esac
case $D in
*[!A-Za-z0-9_./-]*) say "DIR '$D' has characters slurm.conf cannot carry (use letters, digits, _ . / -)"; exit 1 ;;
esac

if [ "$(id -u)" != 0 ]; then
    say "not root: slurmd must run as root (run the test as root to include it)"
    exit 77
fi
missing=""
for c in munged slurmctld slurmd sinfo sbatch squeue scancel scontrol; do
    command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
done
if [ -n "$missing" ]; then
    say "missing commands:$missing (install the Debian packages: apt-get install -y slurm-wlm munge)"
    exit 77
fi

"$HERE/stop_slurm.sh" "$D" >/dev/null 2>&1 # leftovers of an earlier run in the same DIR
rm -rf "$D"
mkdir -p "$D/munge" "$D/ctld" "$D/spool" || { say "cannot create $D"; exit 1; }
chmod 0700 "$D" "$D/munge"

fail() {
    say "$*"
    for f in "$D/munged.log" "$D/slurmctld.log" "$D/slurmd.log"; do
        [ -f "$f" ] && { echo "---- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
    "$HERE/stop_slurm.sh" "$D" >/dev/null 2>&1
    exit 1
}

# munge: a private key and socket (the packaged daemon, if any, is left alone)
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none || fail "cannot write the munge key"
chmod 0400 "$D/munge/munge.key"
munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
    --pid-file="$D/munged.pid" --log-file="$D/munged.log" --seed-file="$D/munge/munged.seed" \
    >>"$D/munged.log" 2>&1 || fail "munged did not start"

# two free ports: nothing may answer on them yet
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
p=${RWKVLAB_SLURM_PORT:-16817}
for _ in $(seq 1 50); do
    port_free "$p" && port_free "$((p + 1))" && break
    p=$((p + 2))
done
port_free "$p" && port_free "$((p + 1))" || fail "no two free ports from ${RWKVLAB_SLURM_PORT:-16817} up"

node=$(slurmd -C 2>/dev/null | head -n 1)
case $node in
NodeName=*) ;;
*) fail "slurmd -C did not describe this node (got '$node')" ;;
esac
host=$(printf '%s\n' "$node" | sed 's/^NodeName=\([^ ]*\).*/\1/')
cat >"$D/slurm.conf" <<EOF
# written by tests/slurm/start_slurm.sh: a single-node cluster for rwkvlab's tests
ClusterName=rwkvlab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$p
SlurmdPort=$((p + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=rwkvlab Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
sed -i 's/ UpTime=[^ ]*//' "$D/slurm.conf"
export SLURM_CONF="$D/slurm.conf"
echo "export SLURM_CONF=$SLURM_CONF" >"$D/env"

slurmctld -c -f "$SLURM_CONF" >>"$D/slurmctld.log" 2>&1 || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$host" >>"$D/slurmd.log" 2>&1 || fail "slurmd did not start"

# the node must come up idle (a down or drained node would leave every job pending)
state=""
for _ in $(seq 1 60); do
    state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "node $host is '${state:-not reported}' after 30 s, not idle"
say "up: node $host idle, partition rwkvlab, ports $p/$((p + 1)), SLURM_CONF=$SLURM_CONF"
exit 0
