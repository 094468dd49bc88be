#!/usr/bin/env bash
# stop_slurm.sh DIR -- stops the cluster start_slurm.sh DIR started: first its jobs (scancel, then up to
# 15 s for them to end; slurmstepd kills what ignores SIGTERM after KillWait = 5 s), then slurmd,
# slurmctld and munged, each by the pid in its pid file and only when that pid is still that daemon
# (SIGTERM, then SIGKILL after 10 s). DIR (logs included) is kept for a look afterwards.
# Exit status 0 when none of its daemons is left running.
set -u
D=${1:?usage: stop_slurm.sh DIR}
alive() { kill -0 "$1" 2>/dev/null; }
# the pid in pidfile $2 when that process is still daemon $1 (its command line says so), else nothing
daemon_pid() {
    [ -f "$2" ] || return 0
    local pid
    pid=$(cat "$2" 2>/dev/null)
    case $pid in '' | *[!0-9]*) rm -f "$2"; return 0 ;; esac
    if grep -qa "$1" "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; else rm -f "$2"; fi
}
stop_daemons() { # name... : SIGTERM to each at once, SIGKILL to any left after 10 s
    local pids="" n pid
    for n in "$@"; do
        pid=$(daemon_pid "$n" "$D/$n.pid")
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && pids="$pids $n:$pid"
    done
    for _ in $(seq 1 100); do
        local any=0
        for n in $pids; do alive "${n#*:}" && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
    done
    for n in $pids; do
        if alive "${n#*:}"; then
            echo "stop_slurm: ${n%%:*} (pid ${n#*:}) ignored SIGTERM for 10 s: SIGKILL" >&2
            kill -KILL "${n#*:}" 2>/dev/null
            sleep 0.5
        fi
        alive "${n#*:}" || rm -f "$D/${n%%:*}.pid" # kept while it runs: the exit status says so
    done
}
if [ -f "$D/slurm.conf" ] && [ -f "$D/slurmctld.pid" ] && command -v squeue >/dev/null 2>&1; then
    export SLURM_CONF="$D/slurm.conf"
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 1 30); do
            [ -z "$(timeout 10 squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi
stop_daemons slurmd slurmctld
stop_daemons munged
left=0
for f in slurmd slurmctld munged; do [ -f "$D/$f.pid" ] && left=1; done
exit $left
