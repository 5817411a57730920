# shellcheck shell=bash disable=SC2034
# testbed/lib.sh — helpers shared by the test bed scripts. Source it:
#   . "$(dirname "$0")/lib.sh"
# Sets TESTBED (this folder), REPO (the repository root) and NOBOUNCE_CACHE.

TESTBED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$TESTBED/.." && pwd)
NOBOUNCE_CACHE=${NOBOUNCE_CACHE:-${HOME:-/root}/.cache/nobounce}
SENDMAIL_ROOT=$NOBOUNCE_CACHE/sendmail
PROG=$(basename "$0")

# die MESSAGE [LOGFILE...]: print the message and the tail of each log, exit 1.
die() {
	local msg=$1
	shift
	echo "$PROG: $msg" >&2
	local f
	for f in "$@"; do
		if [[ -s $f ]]; then
			echo "--- last lines of $f:" >&2
			tail -n 25 "$f" >&2
		fi
	done
	exit 1
}

# abspath PATH: the absolute form of PATH (which must exist).
abspath() { (cd "$1" && pwd); }

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds;
# fail after SECONDS.
wait_until() {
	local limit=$1
	shift
	local deadline=$((SECONDS + limit))
	while ! "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# smtp_ready HOST PORT: true when an SMTP server there sends its 220 greeting.
smtp_ready() {
	local line
	exec 3<>"/dev/tcp/$1/$2" || return 1
	IFS= read -r -t 5 line <&3 || { exec 3>&-; return 1; }
	printf 'QUIT\r\n' >&3 2>/dev/null || true
	exec 3>&-
	[[ $line == 220* ]]
}

# proc_alive PID: true while PID runs (a zombie waiting to be reaped counts as
# gone: the processes here are started with setsid and reaped by init).
proc_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $state != Z && $state != X ]]
}

# pid_alive PIDFILE: true when the first line of PIDFILE names a live process.
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(pid_of "$1")
	[[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid"
}

# pid_of PIDFILE: the pid on the first line of PIDFILE, blanks removed
# (Postfix pads it with spaces).
pid_of() { head -n1 "$1" | tr -d '[:space:]'; }

# proc_gone PID: the opposite of proc_alive, for wait_until.
proc_gone() { ! proc_alive "$1"; }

# stop_pid PID [SECONDS]: SIGTERM PID, wait for it to go, SIGKILL after
# SECONDS (default 10).
stop_pid() {
	local pid=$1 limit=${2:-10}
	proc_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_until "$limit" proc_gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_until 5 proc_gone "$pid" || true
	fi
}

# stop_pidfile PIDFILE [SECONDS]: stop_pid the process named in PIDFILE,
# remove the file.
stop_pidfile() {
	if pid_alive "$1"; then
		stop_pid "$(pid_of "$1")" "${2:-10}"
	fi
	rm -f "$1"
}

# usage TEXT: print usage and exit 2.
usage() {
	echo "usage: $PROG $*" >&2
	exit 2
}
