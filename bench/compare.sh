#!/usr/bin/env bash
# compare.sh — measure ejabberd and Prosody, and xmppd when XMPPD_BIN is
# set, with the same load generator (cmd/xmppbench) and the same method,
# and print one table. See bench/README.md for the method and figures.
#
# Usage (as root, from anywhere):
#   bench/compare.sh                          # ejabberd and Prosody
#   XMPPD_BIN=/path/to/xmppd bench/compare.sh # ... and xmppd
#   SERVERS=xmppd XMPPD_BIN=... bench/compare.sh
#   SCENARIOS="msg-tls" DURATION=10s bench/compare.sh
#
# Each scenario runs against a freshly started server pinned to core
# SERVER_CPU while xmppbench is pinned to core CLIENT_CPU:
#   login-tls   LOGIN_N full logins (TCP+STARTTLS+SASL PLAIN+bind), LOGIN_C at once
#   msg-plain   PAIRS sender/receiver pairs, INFLIGHT each, WARMUP then DURATION, no TLS
#   msg-tls     the same over STARTTLS
#   idle-plain  IDLE_N sessions opened at IDLE_RAMP/s, server VmRSS per session
#   idle-tls    the same over STARTTLS
# TLS scenarios run the server with encryption required, plaintext ones with
# it optional (ejabberd: starttls_required; Prosody: c2s_require_encryption;
# xmppd: tls.require_encryption). NICE=-20 runs server and client at a
# higher priority, for machines shared with other work.
#
# Nothing outside WORK (a fresh temporary directory) is written, Debian's
# /etc/ejabberd and default ports are not used, and every process started
# is stopped by its pid on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

SERVERS=${SERVERS:-ejabberd prosody${XMPPD_BIN:+ xmppd}}
SCENARIOS=${SCENARIOS:-login-tls msg-plain msg-tls idle-plain idle-tls}
DOMAIN=${DOMAIN:-example.com}
C2S_PORT=${C2S_PORT:-15222}
HTTP_PORT=${HTTP_PORT:-15280}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
LOGIN_N=${LOGIN_N:-2000}
LOGIN_C=${LOGIN_C:-50}
PAIRS=${PAIRS:-100}
INFLIGHT=${INFLIGHT:-10}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-100}
IDLE_RAMP=${IDLE_RAMP:-500}
IDLE_C=${IDLE_C:-50}
HOLD=${HOLD:-10s}
NICE=${NICE:-0}
WORK=${WORK:-$(mktemp -d /tmp/xmppbench-compare.XXXXXX)}
RESULTS=${RESULTS:-$WORK/results}

log() { printf '%s compare: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (ejabberdctl switches to the ejabberd user)"
for cmd in taskset jq curl openssl go; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done
if [[ " $SERVERS " == *" xmppd "* ]]; then
	[ -x "${XMPPD_BIN:-}" ] || die "XMPPD_BIN must name the xmppd binary to measure xmppd"
fi

# Descriptors: both the server and xmppbench hold one per session. Raise the
# soft limit to the hard one (and the hard one, where that is allowed) so
# that both inherit it, and keep IDLE_N under it with some headroom for the
# server's own files.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
if [ -z "${IDLE_N:-}" ]; then
	IDLE_N=20000
	if [ "$NOFILE" -lt $((IDLE_N + 500)) ]; then
		IDLE_N=$((NOFILE - 500))
		log "RLIMIT_NOFILE is $NOFILE and cannot be raised here: idle scenarios open $IDLE_N sessions, not 20000"
	fi
fi
USERS=$LOGIN_N
[ $((2 * PAIRS)) -gt "$USERS" ] && USERS=$((2 * PAIRS))
[ "$IDLE_N" -gt "$USERS" ] && USERS=$IDLE_N

mkdir -p "$WORK" "$RESULTS"
chmod 755 "$WORK"
log "work directory $WORK, $USERS users, nofile $NOFILE"

# --- processes we start, stopped on exit ----------------------------------

SERVER_PID=""      # the running server (beam.smp or xmppd)
SERVER_KIND=""
EPMD_BEFORE=$(pgrep -r S,R,D -x epmd || true)
EPMD_PIDS=""       # epmd, if our first ejabberd start launched it

cleanup() {
	stop_server || true
	local p
	for p in $EPMD_PIDS; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # port timeout_s
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

wait_gone() { # pid timeout_s
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	# SIGTERM makes both stop cleanly (the Erlang VM runs init:stop/0); it
	# is much quicker than "ejabberdctl stop", which boots a second VM.
	kill "$SERVER_PID" 2>/dev/null || true
	if ! wait_gone "$SERVER_PID" 60; then
		log "$SERVER_KIND (pid $SERVER_PID) did not stop; killing it"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait_gone "$SERVER_PID" 10 || true
	fi
	SERVER_PID=""
	# Let the kernel release the listening port and the sessions' sockets.
	sleep 2
}

# --- certificate shared by both servers -------------------------------------

# One ECDSA P-256 certificate for both servers, so TLS costs the same
# signature on each (xmppd would generate P-256 itself).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 30 \
	-subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" 2>/dev/null
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/server.pem"

# --- ejabberd ---------------------------------------------------------------

EJ=$WORK/ejabberd
# The node name must stay the same across restarts: Mnesia (and so the
# registered users) is tied to it.
EJCTL=(ejabberdctl --config-dir "$EJ" --config "$EJ/ejabberd.yml"
	--ctl-config "$EJ/ejabberdctl.cfg" --spool "$EJ/spool" --logs "$EJ/logs"
	--node "xmppbench@localhost")

# ejabberd_config REQUIRE_TLS writes ejabberd.yml: internal (Mnesia) auth
# with plain passwords, no traffic shaper, a listen backlog like Go's, and
# the modules a company server runs; the HTTP API on loopback is only used
# to register the users.
ejabberd_config() {
	cat >"$EJ/ejabberd.yml" <<EOF
loglevel: warning
log_rotate_count: 0
hosts:
  - "$DOMAIN"
certfiles:
  - "$WORK/server.pem"
listen:
  -
    port: $C2S_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: true
    starttls_required: $1
  -
    port: $HTTP_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
auth_method: internal
auth_password_format: plain
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "loopback registration":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what:
      - register
      - registered_users
      - status
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_roster: {}
  mod_offline: {}
  mod_ping: {}
  mod_carboncopy: {}
  mod_stream_mgmt: {}
  mod_version: {}
  mod_http_api: {}
EOF
}

start_ejabberd() { # require_tls
	mkdir -p "$EJ/spool" "$EJ/logs"
	cp /etc/ejabberd/inetrc "$EJ/inetrc"
	# ejabberdctl starts the VM through su, whose PAM session resets the
	# soft descriptor limit to 1024 (Debian's systemd unit raises it with
	# LimitNOFILE). ejabberdctl.cfg is sourced after ERL is set, so point
	# ERL at a wrapper that lifts the soft limit to the hard one again.
	# shellcheck disable=SC2016 # expanded by the wrapper, not here
	printf '#!/bin/sh\nulimit -n "$(ulimit -Hn)"\nexec /usr/bin/erl "$@"\n' >"$EJ/erl"
	chmod 755 "$EJ/erl"
	cat >"$EJ/ejabberdctl.cfg" <<EOF
ERL=$EJ/erl
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
ERL_MAX_PORTS=$((NOFILE > 65536 ? NOFILE : 65536))
ERL_PROCESSES=2000000
EJABBERD_PID_PATH=$EJ/ejabberd.pid
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
EJABBERD_BYPASS_WARNINGS=true
EOF
	ejabberd_config "$1"
	rm -f "$EJ/ejabberd.pid"
	chown -R ejabberd:ejabberd "$EJ"
	chmod 700 "$EJ"
	nice -n "$NICE" taskset -c "$SERVER_CPU" "${EJCTL[@]}" start || die "ejabberd did not start (see $EJ/logs)"
	local i
	for ((i = 0; i < 600; i++)); do
		[ -s "$EJ/ejabberd.pid" ] && break
		sleep 0.1
	done
	[ -s "$EJ/ejabberd.pid" ] || die "ejabberd wrote no pid file (see $EJ/logs)"
	SERVER_PID=$(cat "$EJ/ejabberd.pid")
	SERVER_KIND=ejabberd
	if [ -z "$EPMD_BEFORE" ] && [ -z "$EPMD_PIDS" ]; then
		# "epmd -daemon" forks; the daemon is whichever epmd remains.
		sleep 1
		EPMD_PIDS=$(pgrep -r S,R,D -x epmd || true)
	fi
	wait_port "$C2S_PORT" 120 || die "ejabberd c2s port $C2S_PORT not open (see $EJ/logs)"
	wait_port "$HTTP_PORT" 30 || die "ejabberd http port $HTTP_PORT not open (see $EJ/logs)"
}

# register_ejabberd_users makes user1..userUSERS with password "secret"
# through the HTTP API (an ejabberdctl call per user would start an Erlang
# VM per user), retrying the few that a busy Mnesia refuses.
register_ejabberd_users() {
	local try have missing
	for try in 1 2 3 4 5; do
		have=$(curl -s -X POST "http://127.0.0.1:$HTTP_PORT/api/registered_users" \
			-d "{\"host\":\"$DOMAIN\"}" | jq -r '.[]' | sort)
		missing=$(comm -13 <(printf '%s\n' "$have") \
			<(seq 1 "$USERS" | sed 's/^/user/' | sort))
		[ -z "$missing" ] && return 0
		log "registering $(wc -l <<<"$missing") ejabberd users (pass $try)"
		while read -r u; do
			printf 'url = "http://127.0.0.1:%s/api/register"\n' "$HTTP_PORT"
			printf 'data = "{\\"user\\":\\"%s\\",\\"host\\":\\"%s\\",\\"password\\":\\"secret\\"}"\n' "$u" "$DOMAIN"
			printf 'output = "/dev/null"\n'
			printf 'next\n'
		done <<<"$missing" | sed '$d' >"$WORK/register.curl"
		curl -s --no-progress-meter --parallel --parallel-max 4 -K "$WORK/register.curl" || true
	done
	die "could not register all ejabberd users"
}

# --- Prosody -----------------------------------------------------------------

PR=$WORK/prosody

# start_prosody REQUIRE_TLS runs Debian's Prosody in the foreground with
# internal_plain storage (accounts are files we write directly: prosodyctl
# would start Lua once per user) and the modules matching ejabberd's.
start_prosody() {
	local i
	if [ ! -d "$PR/data/${DOMAIN//./%2e}/accounts" ]; then
		log "writing $USERS Prosody accounts"
		mkdir -p "$PR/data/${DOMAIN//./%2e}/accounts"
		for ((i = 1; i <= USERS; i++)); do
			printf 'return {\n\t["password"] = "secret";\n};\n' >"$PR/data/${DOMAIN//./%2e}/accounts/user$i.dat"
		done
	fi
	local plain=true
	[ "$1" = true ] && plain=false
	cat >"$PR/prosody.cfg.lua" <<EOF
run_as_root = true
pidfile = "$PR/prosody.pid"
data_path = "$PR/data"
log = { warn = "$PR/prosody.log" }
network_backend = "epoll"
c2s_ports = { $C2S_PORT }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "smacks"; "version"; "offline"; "posix" }
modules_disabled = { "s2s" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = $1
allow_unencrypted_plain_auth = $plain
ssl = { certificate = "$WORK/cert.pem"; key = "$WORK/key.pem" }
VirtualHost "$DOMAIN"
EOF
	nice -n "$NICE" taskset -c "$SERVER_CPU" prosody --config "$PR/prosody.cfg.lua" -F >>"$PR/prosody.out" 2>&1 &
	SERVER_PID=$!
	SERVER_KIND=prosody
	wait_port "$C2S_PORT" 60 || die "Prosody c2s port $C2S_PORT not open (see $PR/prosody.log)"
}

# --- xmppd -------------------------------------------------------------------

XD=$WORK/xmppd

start_xmppd() { # require_tls
	rm -rf "$XD/data"
	mkdir -p "$XD/data"
	{
		cat <<EOF
domain = "$DOMAIN"
data_dir = "$XD/data"
log_level = "warn"

[listen]
c2s = "127.0.0.1:$C2S_PORT"
http = "127.0.0.1:$HTTP_PORT"

[tls]
cert_file = "$WORK/cert.pem"
key_file = "$WORK/key.pem"
require_encryption = $1

[limits]
max_connections_per_ip = 100000
connections_per_ip_per_second = 100000
stanzas_per_second = 100000
bytes_per_second = 1073741824

[directory]
backend = "static"
EOF
		for ((i = 1; i <= USERS; i++)); do
			printf '\n[[directory.user]]\nname = "user%d"\npassword = "secret"\n' "$i"
		done
		# XMPPD_ARCHIVE=1: the message archive on (issue 6: its write must
		# cost under 20 % of 1:1 throughput).
		# The archive is on by default in xmppd; 0 turns it off so that the
		# figures compare with peers run without MAM.
		if [ "${XMPPD_ARCHIVE:-0}" = 1 ]; then
			printf '\n[archive]\nenabled = true\ndefault_retention = "forever"\n'
		else
			printf '\n[archive]\nenabled = false\n'
		fi
	} >"$XD/xmppd.toml"
	nice -n "$NICE" taskset -c "$SERVER_CPU" "$XMPPD_BIN" serve -config "$XD/xmppd.toml" >>"$XD/xmppd.log" 2>&1 &
	SERVER_PID=$!
	SERVER_KIND=xmppd
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || die "xmppd exited (see $XD/xmppd.log)"
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] && return 0
		sleep 0.1
	done
	die "xmppd not healthy after 60s (see $XD/xmppd.log)"
}

# --- runs ---------------------------------------------------------------------

BENCH=${XMPPBENCH_BIN:-$WORK/xmppbench}
if [ -z "${XMPPBENCH_BIN:-}" ]; then
	(cd "$ROOT" && go build -o "$BENCH" ./cmd/xmppbench) || die "cannot build xmppbench"
fi

bench() { # server scenario args...
	local server=$1 scenario=$2
	shift 2
	local out="$RESULTS/$server-$scenario"
	log "$server $scenario (pid $SERVER_PID): load $(cut -d' ' -f1-3 /proc/loadavg)"
	nice -n "$NICE" taskset -c "$CLIENT_CPU" "$BENCH" -addr "127.0.0.1:$C2S_PORT" -domain "$DOMAIN" \
		-user 'user%d' -password secret -first 1 -pid "$SERVER_PID" -json "$@" \
		>"$out.txt" 2>&1 || log "$server $scenario: xmppbench failed (see $out.txt)"
	grep -v '^{' "$out.txt" >&2 || true
	grep '^{' "$out.txt" | tail -n 1 |
		jq -c --arg s "$server" --arg c "$scenario" --arg l "$(cut -d' ' -f1 /proc/loadavg)" \
			'. + {server: $s, scenario: $c, loadavg: $l}' >"$out.json" || true
}

run_server() { # server
	local server=$1 scenario tls require
	if [ "$server" = ejabberd ]; then
		start_ejabberd false
		register_ejabberd_users
		stop_server
	fi
	for scenario in $SCENARIOS; do
		case $scenario in
		*-tls) tls=true require=true ;;
		*) tls=false require=false ;;
		esac
		"start_$server" "$require"
		case $scenario in
		login-*) bench "$server" "$scenario" -mode login -tls=$tls -n "$LOGIN_N" -concurrency "$LOGIN_C" ;;
		msg-*) bench "$server" "$scenario" -mode msg -tls=$tls -pairs "$PAIRS" -inflight "$INFLIGHT" \
			-duration "$DURATION" -warmup "$WARMUP" -size "$SIZE" ;;
		idle-*) bench "$server" "$scenario" -mode idle -tls=$tls -n "$IDLE_N" -concurrency "$IDLE_C" \
			-ramp "$IDLE_RAMP/s" -hold "$HOLD" ;;
		*) die "unknown scenario $scenario" ;;
		esac
		stop_server
	done
}

for server in $SERVERS; do
	case $server in
	ejabberd | prosody | xmppd) run_server "$server" ;;
	*) die "unknown server $server (ejabberd, prosody, xmppd)" ;;
	esac
done

# --- table --------------------------------------------------------------------

# "per server CPU s" divides by the CPU time the server process used, which
# stays meaningful when other work shares the machine; "others" is the share
# of the server's core that other processes took during the measurement
# (xmppbench's own core in brackets): high values mean a starved server, not
# a slow one.
{
	echo "| server | scenario | result | per server CPU s | latency p50 / p90 / p99 / max (ms) | server CPU, others on its core (on client core) | errors | load |"
	echo "|---|---|---|---|---|---|---|---|"
	for server in $SERVERS; do
		for scenario in $SCENARIOS; do
			f="$RESULTS/$server-$scenario.json"
			if [ ! -s "$f" ]; then
				echo "| $server | $scenario | (no result) | | | | | |"
				continue
			fi
			jq -r '
			  def lat(l): "\(l.p50_ms) / \(l.p90_ms) / \(l.p99_ms) / \(l.max_ms)";
			  def per(n; c): if (c // 0) > 0 then (n / c | floor | tostring) else "-" end;
			  if .mode == "login" then
			    "| \(.server) | \(.scenario) | \(.logins_per_s) logins/s (\(.ok)/\(.n) ok) | \(per(.ok; .server_cpu_s)) logins | \(lat(.latency)) | \(.server_cpu_s // 0) s, \(.server_core_others_pct // "-")% (\(.client_core_others_pct // "-")%) | \(.errors) | \(.loadavg) |"
			  elif .mode == "msg" then
			    "| \(.server) | \(.scenario) | \(.msgs_per_s) msgs/s, \(.lost) lost | \(per(.measured; .server_cpu_s)) msgs | \(lat(.latency)) | \(.server_cpu_pct // 0)% of a core, \(.server_core_others_pct // "-")% (\(.client_core_others_pct // "-")%) | \(.errors) | \(.loadavg) |"
			  else
			    "| \(.server) | \(.scenario) | \(.kib_per_session) KiB/session: \(.opened)/\(.n) open, VmRSS \(.server_rss_before_kib) -> \(.server_rss_after_kib) KiB, \(.dropped) dropped | \(per(.opened; .server_cpu_open_s)) logins | login \(lat(.login_latency)) | \(.server_cpu_open_s) s to open, \(.server_core_others_pct // "-")% (\(.client_core_others_pct // "-")%) | \(.errors) | \(.loadavg) |"
			  end' "$f"
		done
	done
} | tee "$RESULTS/table.md"
log "results in $RESULTS"
