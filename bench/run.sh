#!/usr/bin/env bash
# Side-by-side benchmarks of Moat against its peers (see bench/README.md):
#
#   policy        HTTPS policy fetches over keep-alive connections, Moat vs nginx
#   policy-fresh  one new TLS connection per fetch, Moat vs nginx
#   dns           TXT answers, Moat vs Knot DNS
#   memory        Moat's RSS with N hosted domains vs an empty server
#   all           everything above (the default)
#
# Every server listens on 127.0.0.1 on free high ports; nothing else is
# contacted. Temporary files live under one directory that is removed on
# exit, and every process started here is stopped on exit.
#
# Environment (defaults in brackets):
#   N [100000]            hosted domains
#   DURATION [10]         seconds of each measured run
#   ROUNDS [3]            measured runs per server, alternating; the median is reported
#   CONNS [50]            wrk connections, keep-alive runs
#   FRESH_CONNS [50]      tlsload connections, fresh-connection runs
#   WRK_THREADS [1]       wrk threads
#   DNS_CLIENTS [8]       dnsperf -c
#   DNS_THREADS [1]       dnsperf -T
#   DNS_OUTSTANDING [200] dnsperf -q
#   DNS_QPS [0]           dnsperf -Q (0: as fast as the server answers)
#   SERVER_THREADS [2]    nginx worker_processes, Knot udp-workers and Moat's GOMAXPROCS
#   WORK_BASE [/dev/shm]  where the temporary directory is made
#   KEEP_WORK [0]         1: keep the temporary directory (its path is printed)
set -euo pipefail

MODE=${1:-all}
case $MODE in
policy | policy-fresh | dns | memory | all) ;;
*)
	echo "usage: $0 [policy|policy-fresh|dns|memory|all]" >&2
	exit 2
	;;
esac

N=${N:-100000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
FRESH_CONNS=${FRESH_CONNS:-50}
WRK_THREADS=${WRK_THREADS:-1}
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_THREADS=${DNS_THREADS:-1}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-200}
DNS_QPS=${DNS_QPS:-0}
SERVER_THREADS=${SERVER_THREADS:-2}
WORK_BASE=${WORK_BASE:-/dev/shm}
KEEP_WORK=${KEEP_WORK:-0}
ZONE=sts.test
HZ=$(getconf CLK_TCK)

cd "$(dirname "$0")/.."
ROOT=$(pwd)

# --- tools ---------------------------------------------------------------

need() {
	local missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	if ((${#missing[@]})); then
		echo "missing tools: ${missing[*]}" >&2
		echo "install them with: apt-get install -y nginx-light knot knot-dnsutils dnsperf wrk (and Go for the build)" >&2
		exit 1
	fi
}

need go awk ps ss timeout getconf sort
case $MODE in
policy | policy-fresh) need wrk nginx ;;
dns) need dnsperf knotd kdig ;;
all) need wrk nginx dnsperf knotd kdig ;;
esac
# Debian installs nginx and knotd under /usr/sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin

# --- processes and cleanup -----------------------------------------------

WORK=$(mktemp -d "$WORK_BASE/moat-bench.XXXXXX")
PIDS=()

stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	wait 2>/dev/null || true
	if [ "$KEEP_WORK" = 1 ]; then
		echo "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# free_port prints a TCP and UDP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if [ -z "$(ss -Htuln "sport = :$p" 2>/dev/null)" ] && ! grep -qx "$p" "$WORK/ports" 2>/dev/null; then
			echo "$p" >>"$WORK/ports"
			echo "$p"
			return
		fi
	done
}

# cpu_ticks prints utime+stime of the given processes (all their threads,
# exited ones included), in clock ticks.
cpu_ticks() {
	local total=0 pid t
	for pid in "$@"; do
		# Fields after the command name, which is in parentheses: utime and
		# stime are fields 14 and 15 of the whole line, 12 and 13 after ")".
		t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
		total=$((total + t))
	done
	echo "$total"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

tcp_passive_opens() { awk '/^Tcp: [0-9]/ {print $7}' /proc/net/snmp; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local secs=$1 what=$2
	shift 2
	for _ in $(seq $((secs * 10))); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "timed out waiting for $what" >&2
	exit 1
}

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- build and seed ------------------------------------------------------

BIN=$WORK/bin
echo "building into $BIN ..."
mkdir -p "$BIN"
go build -o "$BIN/moat" ./cmd/moat
go build -o "$BIN/seed" ./bench/cmd/seed
go build -o "$BIN/leafcert" ./bench/cmd/leafcert
go build -o "$BIN/snapmem" ./bench/cmd/snapmem
go build -o "$BIN/tlsload" ./bench/cmd/tlsload

DATA=$WORK/data
MOAT_DNS=$(free_port)
MOAT_HTTPS=$(free_port)
MOAT_HTTP=$(free_port)
MOAT_PID=

# Listeners that are not measured are turned off where Moat has them.
MOAT_EXTRA=()
if "$BIN/moat" serve --help 2>&1 | grep -q -- --smtp-listen; then
	MOAT_EXTRA+=(--smtp-listen "")
fi

start_moat() {
	: >"$WORK/moat.log"
	GOMAXPROCS=$SERVER_THREADS "$BIN/moat" serve --dev --data "$DATA" --zone "$ZONE" --log-level warn \
		--dns-listen "127.0.0.1:$MOAT_DNS" --https-listen "127.0.0.1:$MOAT_HTTPS" \
		--http-listen "127.0.0.1:$MOAT_HTTP" "${MOAT_EXTRA[@]}" >>"$WORK/moat.log" 2>&1 &
	MOAT_PID=$!
	PIDS+=("$MOAT_PID")
	wait_for 60 "moat serve (log: $WORK/moat.log)" grep -q "Moat is running" "$WORK/moat.log"
}

stop_moat() {
	stop_pid "$MOAT_PID"
	forget_pid "$MOAT_PID"
	MOAT_PID=
}

RESULTS=$WORK/results
: >"$RESULTS"

if [ "$MODE" = memory ] || [ "$MODE" = all ]; then
	echo "memory: starting Moat with no domains but the demo one ..."
	start_moat
	sleep 3
	RSS_EMPTY=$(rss_kb "$MOAT_PID")
	stop_moat
fi

echo "seeding $N domains ..."
mkdir -p "$WORK/peer"
chmod 755 "$WORK" "$WORK/peer"
"$BIN/seed" -data "$DATA" -n "$N" -zone "$ZONE" -zone-out "$WORK/peer/$ZONE.zone" \
	-policy-out "$WORK/peer/mta-sts.txt" -queries-out "$WORK/peer/queries.txt"
"$BIN/leafcert" -data "$DATA" -name mta-sts.d1.test -cert "$WORK/peer/cert.pem" -key "$WORK/peer/key.pem"
chmod 644 "$WORK/peer/"*

start_moat
if [ "$MODE" = memory ] || [ "$MODE" = all ]; then
	sleep 3
	RSS_FULL=$(rss_kb "$MOAT_PID")
	"$BIN/snapmem" -data "$DATA" -zone "$ZONE" >"$WORK/snapmem.txt"
fi

# --- policy over HTTPS: Moat vs nginx ------------------------------------

NGINX_PID=
NGINX_PORT=
NGINX_CHECK_PORT=

start_nginx() {
	local d=$WORK/nginx user=""
	mkdir -p "$d/tmp"
	NGINX_PORT=$(free_port)
	NGINX_CHECK_PORT=$(free_port)
	if [ "$(id -u)" = 0 ]; then
		user="user root;"
	fi
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes $SERVER_THREADS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	server_tokens off;
	# Go's server has no per-connection request limit; nginx's default of
	# 1000 would add handshakes to nginx's side only.
	keepalive_requests 100000000;
	keepalive_timeout 60s;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_certificate $WORK/peer/cert.pem;
	ssl_certificate_key $WORK/peer/key.pem;
	log_format reuse '\$connection \$ssl_session_reused \$ssl_protocol';
	server {
		listen 127.0.0.1:$NGINX_PORT ssl default_server;
		server_name _;
		location = /.well-known/mta-sts.txt {
			root $WORK/peer;
			try_files /mta-sts.txt =404;
			types { }
			default_type "text/plain; charset=utf-8";
			etag off;
			add_header Cache-Control no-store;
			add_header X-Content-Type-Options nosniff;
		}
		location / { return 404; }
	}
	# The same with an access log of connection numbers and session reuse,
	# for the handshake check of policy-fresh; never measured.
	server {
		listen 127.0.0.1:$NGINX_CHECK_PORT ssl default_server;
		access_log $d/check.log reuse;
		location / {
			root $WORK/peer;
			try_files /mta-sts.txt =404;
		}
	}
}
EOF
	nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	wait_for 10 "nginx (log: $d/error.log)" test -s "$d/nginx.pid"
	sleep 0.5
}

nginx_pids() { echo "$NGINX_PID" $(ps -o pid= --ppid "$NGINX_PID"); }

# run_http BENCH PEER ROUND PORT DURATION PIDS... runs one load: wrk over
# keep-alive connections for "policy", tlsload (a new connection and a full
# TLS handshake per fetch) for "policy-fresh".
run_http() {
	local bench=$1 peer=$2 round=$3 port=$4 dur=$5
	shift 5
	local out=$WORK/$bench-$peer-$round.txt before after opens0 opens1 reqs rps bad errs
	before=$(cpu_ticks "$@")
	opens0=$(tcp_passive_opens)
	if [ "$bench" = policy ]; then
		timeout $((dur + 30)) wrk -t "$WRK_THREADS" -c "$CONNS" -d "${dur}s" -s "$ROOT/bench/policy.lua" \
			"https://mta-sts.d1.test:$port/.well-known/mta-sts.txt" -- "$N" >"$out" 2>&1 || true
	else
		timeout $((dur + 30)) "$BIN/tlsload" -addr "127.0.0.1:$port" -n "$N" -c "$FRESH_CONNS" \
			-d "${dur}s" >"$out" 2>&1 || true
	fi
	after=$(cpu_ticks "$@")
	opens1=$(tcp_passive_opens)
	[ "$round" = warmup ] && return 0
	if [ "$bench" = policy ]; then
		reqs=$(awk '/requests in/ {print $1}' "$out")
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
		bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
		errs=$(awk '/Socket errors:/ {print}' "$out")
	else
		reqs=$(awk '$1 == "requests" {print $2}' "$out")
		rps=$(awk '$1 == "req/s" {print $2}' "$out")
		bad=$(awk '$1 == "errors" && $2 != 0 {print $2}' "$out")
		errs=
	fi
	if [ -z "$reqs" ] || [ "${reqs:-0}" -eq 0 ] || [ -n "$bad" ]; then
		echo "$bench load against $peer failed or got errors:" >&2
		cat "$out" >&2
		exit 1
	fi
	local us conns_per
	us=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$reqs" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
	conns_per=$(awk -v o=$((opens1 - opens0)) -v r="$reqs" 'BEGIN {printf "%.3f", o / r}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$bench" "$peer" "$round" "$reqs" "$rps" "$us" "$conns_per" >>"$RESULTS"
	printf '  %-13s %-6s round %s: %9s requests %10s req/s %8s µs CPU/req  %s new conns/req  load %s %s\n' \
		"$bench" "$peer" "$round" "$reqs" "$rps" "$us" "$conns_per" "$(load_avg)" "${errs:+($errs)}"
}

bench_policy() { # bench_policy BENCH
	local bench=$1 r conns=$CONNS
	[ "$bench" = policy ] || conns=$FRESH_CONNS
	echo "$bench: $conns connections, ${DURATION}s per run, $ROUNDS rounds, load $(load_avg)"
	run_http "$bench" moat warmup "$MOAT_HTTPS" 2 "$MOAT_PID"
	run_http "$bench" nginx warmup "$NGINX_PORT" 2 $(nginx_pids)
	for r in $(seq "$ROUNDS"); do
		if ((r % 2)); then
			run_http "$bench" moat "$r" "$MOAT_HTTPS" "$DURATION" "$MOAT_PID"
			run_http "$bench" nginx "$r" "$NGINX_PORT" "$DURATION" $(nginx_pids)
		else
			run_http "$bench" nginx "$r" "$NGINX_PORT" "$DURATION" $(nginx_pids)
			run_http "$bench" moat "$r" "$MOAT_HTTPS" "$DURATION" "$MOAT_PID"
		fi
	done
}

# check_handshakes shows how many TLS sessions each client resumes: nginx
# logs each request's connection number and whether its session was
# resumed. tlsload must resume none; wrk, for the record, resumes nearly
# all of them when it reconnects, which is why policy-fresh does not use it.
check_handshakes() {
	local log=$WORK/nginx/check.log client
	for client in tlsload wrk; do
		: >"$log"
		if [ $client = tlsload ]; then
			timeout 30 "$BIN/tlsload" -addr "127.0.0.1:$NGINX_CHECK_PORT" -n "$N" -c 4 -d 2s >/dev/null 2>&1 || true
		else
			timeout 30 wrk -t 1 -c 4 -d 2s -s "$ROOT/bench/policy.lua" \
				"https://mta-sts.d1.test:$NGINX_CHECK_PORT/.well-known/mta-sts.txt" -- "$N" close >/dev/null 2>&1 || true
		fi
		sleep 0.5
		awk -v client=$client '{n++; conns[$1] = 1; if ($2 == "r") reused++; proto[$3]++}
			END {c = 0; for (k in conns) c++;
				printf "  handshake check, %s with Connection: close: %d requests on %d connections, %d resumed TLS sessions", client, n, c, reused + 0;
				for (p in proto) printf ", %s: %d", p, proto[p]; printf "\n"}' "$log"
	done
}

case $MODE in
policy | policy-fresh | all)
	start_nginx
	echo "nginx $(nginx -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'), $(openssl version 2>/dev/null || true)"
	;;
esac
if [ "$MODE" = policy ] || [ "$MODE" = all ]; then
	bench_policy policy
fi
if [ "$MODE" = policy-fresh ] || [ "$MODE" = all ]; then
	check_handshakes
	bench_policy policy-fresh
fi
if [ -n "$NGINX_PID" ]; then
	stop_pid "$NGINX_PID"
	forget_pid "$NGINX_PID"
fi

# --- DNS: Moat vs Knot ---------------------------------------------------

KNOT_PID=
KNOT_PORT=

start_knot() {
	local d=$WORK/knot
	mkdir -p "$d/run" "$d/db"
	KNOT_PORT=$(free_port)
	cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d/run"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: $SERVER_THREADS
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$WORK/peer"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: $ZONE
    file: "$ZONE.zone"
EOF
	knotd -c "$d/knot.conf" >"$d/knot.log" 2>&1 &
	KNOT_PID=$!
	PIDS+=("$KNOT_PID")
	wait_for 120 "knotd to load the zone (log: $d/knot.log)" \
		sh -c "kdig @127.0.0.1 -p $KNOT_PORT +short d$N.test._mta-sts.$ZONE TXT | grep -q STSv1"
}

# run_dnsperf PEER ROUND PORT DURATION PIDS...
run_dnsperf() {
	local peer=$1 round=$2 port=$3 dur=$4
	shift 4
	local out=$WORK/dnsperf-$peer-$round.txt before after qps_opt=()
	if [ "$DNS_QPS" != 0 ]; then
		qps_opt=(-Q "$DNS_QPS")
	fi
	before=$(cpu_ticks "$@")
	timeout $((dur + 30)) dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/peer/queries.txt" -l "$dur" \
		-c "$DNS_CLIENTS" -T "$DNS_THREADS" -q "$DNS_OUTSTANDING" "${qps_opt[@]}" >"$out" 2>&1
	after=$(cpu_ticks "$@")
	[ "$round" = warmup ] && return 0
	local done qps lost noerr
	done=$(awk '/Queries completed:/ {print $3}' "$out")
	qps=$(awk '/Queries per second:/ {print $4}' "$out")
	lost=$(awk '/Queries lost:/ {print $3}' "$out")
	noerr=$(awk '/Response codes:/ {print}' "$out")
	if [ -z "$done" ] || [ "$done" -eq 0 ] || ! echo "$noerr" | grep -q "NOERROR $done "; then
		echo "dnsperf against $peer failed or got answers other than NOERROR:" >&2
		cat "$out" >&2
		exit 1
	fi
	local us
	us=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$done" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' dns "$peer" "$round" "$done" "$qps" "$us" - >>"$RESULTS"
	printf '  %-13s %-6s round %s: %9s queries  %10s q/s   %8s µs CPU/query  lost %s  load %s\n' \
		dns "$peer" "$round" "$done" "$qps" "$us" "$lost" "$(load_avg)"
}

if [ "$MODE" = dns ] || [ "$MODE" = all ]; then
	start_knot
	# Both must give the same answer to the same question.
	for q in "d1.test._mta-sts.$ZONE" "d$N.test._smtp._tls.$ZONE"; do
		a=$(kdig @127.0.0.1 -p "$MOAT_DNS" +short "$q" TXT)
		b=$(kdig @127.0.0.1 -p "$KNOT_PORT" +short "$q" TXT)
		if [ "$a" != "$b" ] || [ -z "$a" ]; then
			echo "Moat and Knot answer $q differently: '$a' vs '$b'" >&2
			exit 1
		fi
	done
	echo "dns: $(knotd --version 2>&1 | head -1), dnsperf -c $DNS_CLIENTS -T $DNS_THREADS -q $DNS_OUTSTANDING" \
		"-Q ${DNS_QPS/#0/unlimited}, ${DURATION}s per run, $ROUNDS rounds, load $(load_avg)"
	run_dnsperf moat warmup "$MOAT_DNS" 2 "$MOAT_PID"
	run_dnsperf knot warmup "$KNOT_PORT" 2 "$KNOT_PID"
	for r in $(seq "$ROUNDS"); do
		if ((r % 2)); then
			run_dnsperf moat "$r" "$MOAT_DNS" "$DURATION" "$MOAT_PID"
			run_dnsperf knot "$r" "$KNOT_PORT" "$DURATION" "$KNOT_PID"
		else
			run_dnsperf knot "$r" "$KNOT_PORT" "$DURATION" "$KNOT_PID"
			run_dnsperf moat "$r" "$MOAT_DNS" "$DURATION" "$MOAT_PID"
		fi
	done
fi

# --- report --------------------------------------------------------------

echo
echo "== results: median of $ROUNDS runs (N=$N domains, $(nproc) CPUs shared by servers and load generators)"
awk -F'\t' '
function median(list,    a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	k = $1 SUBSEP $2
	if (!(k in reqs)) { order[++nk] = k }
	reqs[k] = reqs[k] " " $4; rps[k] = rps[k] " " $5; us[k] = us[k] " " $6
}
END {
	printf "%-13s %-6s %12s %12s %14s %12s\n", "benchmark", "peer", "requests", "req/s", "CPU µs/req", "Moat/peer"
	for (i = 1; i <= nk; i++) {
		split(order[i], p, SUBSEP)
		med[order[i]] = median(us[order[i]])
	}
	for (i = 1; i <= nk; i++) {
		split(order[i], p, SUBSEP)
		ratio = "-"
		if (p[2] != "moat" && ((p[1] SUBSEP "moat") in med) && med[order[i]] > 0)
			ratio = sprintf("%.2f", med[p[1] SUBSEP "moat"] / med[order[i]])
		printf "%-13s %-6s %12d %12.0f %14.2f %12s\n", p[1], p[2], median(reqs[order[i]]), median(rps[order[i]]), med[order[i]], ratio
	}
}' "$RESULTS"

if [ "$MODE" = memory ] || [ "$MODE" = all ]; then
	echo
	echo "== memory"
	awk -v e="$RSS_EMPTY" -v f="$RSS_FULL" -v n="$N" 'BEGIN {
		printf "moat serve RSS: %d KiB with 1 domain, %d KiB with %d more: %.0f bytes per domain\n", e, f, n, (f - e) * 1024 / n }'
	cat "$WORK/snapmem.txt"
fi
