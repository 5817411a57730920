#!/usr/bin/env bash
# testbed/install.sh — install every real program the integration tests and
# `make demo` use, on a fresh Debian 12 machine. Idempotent: it runs
# `apt-get update` and `apt-get install` only when something is missing, and
# says nothing on success.
#
#   bash testbed/install.sh
#
# Installs: postfix (smtp-sink too), clamav-daemon (clamd), clamav (sigtool),
# clamdscan (PING), clamav-testfiles, swaks, m4, spamd + spamassassin + spamc,
# rspamd (rspamc), dnsmasq-base (a DNS server for blocklist tests),
# clamav-milter and spamass-milter (the peers testbed/compare.sh measures
# nobounce against; their services are kept off). The system postfix, clamd and
# freshclam are stopped and disabled if their packages started them: the test
# bed runs its own private instances on loopback.
#
# Sendmail conflicts with postfix as a package, so sendmail-bin and sendmail-cf
# are downloaded and unpacked with `dpkg -x` into
#   ${NOBOUNCE_CACHE:-$HOME/.cache/nobounce}/sendmail
# (the libraries its binary links to are installed as ordinary packages).
# Needs root. Works without a tty and without stdin.
set -euo pipefail
exec </dev/null
export DEBIAN_FRONTEND=noninteractive

CACHE=${NOBOUNCE_CACHE:-${HOME:-/root}/.cache/nobounce}
SM_DIR=$CACHE/sendmail
SM_BIN=$SM_DIR/usr/libexec/sendmail/sendmail
SM_CF=$SM_DIR/usr/share/sendmail/cf/m4/cf.m4
LOG=$(mktemp /tmp/nobounce-install.XXXXXX)
POLICY=/usr/sbin/policy-rc.d
POLICY_OURS=
cleanup() {
	rm -f "$LOG"
	if [[ -n $POLICY_OURS ]]; then rm -f "$POLICY"; fi
}
trap cleanup EXIT

die() {
	echo "install.sh: $*" >&2
	if [[ -s $LOG ]]; then
		echo "--- last lines of the install log:" >&2
		tail -n 30 "$LOG" >&2
	fi
	exit 1
}

if [[ $(id -u) != 0 ]]; then
	die "must run as root (apt-get, dpkg)"
fi

updated=
apt_update() {
	[[ -n $updated ]] && return 0
	apt-get update >>"$LOG" 2>&1 || die "apt-get update failed"
	updated=1
}
apt_install() {
	apt_update
	# Keep the packages' postinst from starting their daemons at all (a
	# freshclam would try the internet): invoke-rc.d asks policy-rc.d, and
	# 101 means "not now". Only ours, removed on exit.
	if [[ ! -e $POLICY ]]; then
		printf '#!/bin/sh\n# testbed/install.sh: no daemon starts during install\nexit 101\n' >"$POLICY"
		chmod 755 "$POLICY"
		POLICY_OURS=1
	fi
	apt-get install -y --no-install-recommends "$@" >>"$LOG" 2>&1 ||
		die "apt-get install $* failed"
}

# service_off NAME: stop a system service that a package's postinst may have
# started, and keep it from starting at boot. Works with and without systemd.
service_off() {
	local name=$1
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now "$name" >>"$LOG" 2>&1 || true
	elif [[ -x /etc/init.d/$name ]]; then
		/etc/init.d/"$name" stop >>"$LOG" 2>&1 || true
		update-rc.d "$name" disable >>"$LOG" 2>&1 || true
	fi
}

# --- Debian packages --------------------------------------------------------
# command or path that proves the package is there → package name
declare -A want=(
	[/usr/sbin/postfix]=postfix
	[/usr/sbin/smtp-sink]=postfix
	[/usr/sbin/clamd]=clamav-daemon
	[/usr/bin/sigtool]=clamav
	[/usr/bin/clamdscan]=clamdscan
	[/usr/share/clamav-testfiles/clam.exe]=clamav-testfiles
	[/usr/bin/swaks]=swaks
	[/usr/bin/m4]=m4
	[/usr/sbin/spamd]=spamd
	[/usr/bin/spamassassin]=spamassassin
	[/usr/bin/spamc]=spamc
	[/usr/bin/rspamd]=rspamd
	[/usr/bin/rspamc]=rspamd
	[/usr/sbin/dnsmasq]=dnsmasq-base
	[/usr/sbin/clamav-milter]=clamav-milter
	[/usr/sbin/spamass-milter]=spamass-milter
)
missing=()
for path in "${!want[@]}"; do
	[[ -e $path ]] || missing+=("${want[$path]}")
done
if ((${#missing[@]})); then
	fresh_postfix=
	[[ -e /usr/sbin/postfix ]] || fresh_postfix=1
	# shellcheck disable=SC2207
	missing=($(printf '%s\n' "${missing[@]}" | sort -u))
	if [[ -n $fresh_postfix ]]; then
		# A plain "Internet Site" is fine: the system instance is stopped below
		# and the test bed runs its own with `postfix -c`.
		echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
		echo "postfix postfix/mailname string $(hostname)" | debconf-set-selections
	fi
	apt_install "${missing[@]}"
	for path in "${!want[@]}"; do
		[[ -e $path ]] || die "$path is still missing after installing ${want[$path]}"
	done
fi

# The system instances must not hold port 25 or run freshclam (no internet),
# whoever started them.
if postfix status >/dev/null 2>&1; then
	postfix stop >>"$LOG" 2>&1 || true
fi
service_off postfix
if [[ -e /run/clamav/clamd.ctl || -e /run/clamav/clamd.pid || -e /run/clamav/freshclam.pid ]] ||
	pgrep -x clamd >/dev/null 2>&1 || pgrep -x freshclam >/dev/null 2>&1; then
	service_off clamav-daemon
	service_off clamav-freshclam
fi
for svc in spamd spamassassin rspamd clamav-milter spamass-milter; do
	if pgrep -x "$svc" >/dev/null 2>&1 || [[ -e /run/$svc.pid || -e /run/rspamd/rspamd.pid ]]; then
		service_off "$svc"
	fi
done

# --- Sendmail, unpacked beside the postfix package ---------------------------
sendmail_ok() {
	[[ -x $SM_BIN && -f $SM_CF && -f $SM_DIR/.complete ]] || return 1
	! ldd "$SM_BIN" 2>/dev/null | grep -q 'not found'
}
if ! sendmail_ok; then
	if ! [[ -x $SM_BIN && -f $SM_CF && -f $SM_DIR/.complete ]]; then
		tmp=$(mktemp -d /tmp/nobounce-sendmail.XXXXXX)
		chmod 755 "$tmp" # apt's _apt user downloads into it
		apt_update
		(cd "$tmp" && apt-get download sendmail-bin sendmail-cf) >>"$LOG" 2>&1 ||
			die "apt-get download sendmail-bin sendmail-cf failed"
		rm -rf "$SM_DIR.new"
		mkdir -p "$SM_DIR.new"
		for deb in "$tmp"/*.deb; do
			dpkg -x "$deb" "$SM_DIR.new" || die "dpkg -x $deb failed"
		done
		# The libraries sendmail links to (libwrap0, liblockfile1, ...) install
		# as ordinary packages: remember which, from the package's Depends.
		dpkg-deb -f "$tmp"/sendmail-bin_*.deb Depends | tr ',' '\n' |
			sed -E 's/^ *//; s/[ (].*//' | grep '^lib' >"$SM_DIR.new/.depends" || true
		rm -rf "$tmp" "$SM_DIR"
		mv "$SM_DIR.new" "$SM_DIR"
		touch "$SM_DIR/.complete"
	fi
	if ldd "$SM_BIN" 2>/dev/null | grep -q 'not found'; then
		# shellcheck disable=SC2046
		apt_install $(cat "$SM_DIR/.depends")
	fi
	sendmail_ok || die "sendmail in $SM_DIR is not usable: $(ldd "$SM_BIN" 2>&1 | grep 'not found' || true)"
fi
