# Shared by deploy/local/stack.sh and deploy/cluster/cluster.sh (sourced):
# the checks on the processes they start and the ports they wait for.
# The caller sets RUN (pid files), LOGS and a `log` function.

running() { # name -> true if its pid file names a live process (a killed one not yet reaped is not)
    local pidfile="$RUN/$1.pid"
    [ -f "$pidfile" ] || return 1
    local state; state="$(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # description, seconds, command...
    local what="$1" secs="$2"; shift 2
    for _ in $(seq $((secs * 5))); do
        if "$@"; then return 0; fi
        sleep 0.2
    done
    log "$what did not come up within ${secs}s; see $LOGS"
    return 1
}
