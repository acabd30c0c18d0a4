#!/usr/bin/env bash
# Side-by-side benchmarks of Moat against its peers (see bench/README.md):
#
#   policy        HTTPS policy fetches over keep-alive connections, Moat vs nginx
#   policy-fresh  one new TLS connection per fetch, Moat vs nginx
#   dns           TXT answers, Moat vs Knot DNS
#   memory        Moat's RSS with N hosted domains vs an empty server
#   intake        TLS-RPT reports stored durably by HTTPS and SMTP, and DMARC
#                 aggregate reports by SMTP, Moat vs Postfix's smtp-sink (which
#                 discards them) for SMTP
#   dmarc         the SMTP rows of intake only (TLS-RPT and DMARC, one message per
#                 connection, 1 KB and 20 KB, beside smtp-sink), then `moat import`
#                 of the largest DMARC aggregate report of the shared corpora and of
#                 a generated report of DMARC_RECORDS records (time, peak RSS)
#   all           everything above (the default)
#
# Every server listens on 127.0.0.1 on free high ports; nothing else is
# contacted. Temporary files live under one directory that is removed on
# exit (and the intake's database under a second one, on a disk), and every
# process started here is stopped on exit.
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
#   INTAKE_CLIENTS [16]   concurrent intakeload clients (intake)
#   INTAKE_N [DURATION*12000] reports built per intake run, at most (a quarter for 20 KB reports)
#   INTAKE_BASE [/var/tmp]    where the intake's database lives: a disk, so that fsync costs what it costs
#   WORK_BASE [/dev/shm]  where the temporary directory is made
#   KEEP_WORK [0]         1: keep the temporary directory (its path is printed)
#   CORPORA [$MOAT_CORPORA, ../shared/corpora or ../../shared/corpora]  the shared real-world samples (dmarc; read in place)
#   DMARC_RECORDS [1000000]      records of the generated report (dmarc)
set -euo pipefail

MODE=${1:-all}
case $MODE in
policy | policy-fresh | dns | memory | intake | dmarc | all) ;;
*)
	echo "usage: $0 [policy|policy-fresh|dns|memory|intake|dmarc|all]" >&2
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
INTAKE_CLIENTS=${INTAKE_CLIENTS:-16}
INTAKE_N=${INTAKE_N:-$((DURATION * 12000))}
INTAKE_BASE=${INTAKE_BASE:-/var/tmp}
WORK_BASE=${WORK_BASE:-/dev/shm}
KEEP_WORK=${KEEP_WORK:-0}
DMARC_RECORDS=${DMARC_RECORDS:-1000000}
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
		echo "install them with: apt-get install -y nginx-light knot knot-dnsutils dnsperf wrk postfix (and Go for the build)" >&2
		echo "(postfix only for its smtp-sink: Moat's benchmark never starts Postfix itself; stop it if the package started it)" >&2
		exit 1
	fi
}

# Debian installs nginx, knotd and smtp-sink under /usr/sbin, which a
# non-root PATH may lack.
PATH=$PATH:/usr/sbin:/usr/lib/postfix/sbin
need go awk ps ss timeout getconf sort
case $MODE in
policy | policy-fresh) need wrk nginx ;;
dns) need dnsperf knotd kdig ;;
intake | dmarc) need smtp-sink ;;
all) need wrk nginx dnsperf knotd kdig smtp-sink ;;
esac

# --- processes and cleanup -----------------------------------------------

WORK=$(mktemp -d "$WORK_BASE/moat-bench.XXXXXX")
INTAKE_WORK= # on a disk (INTAKE_BASE), made by the intake benchmark
SPOOL_WORK=  # the same, of the Moat with the spool
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
		echo "work directory kept: $WORK ${INTAKE_WORK} ${SPOOL_WORK}" >&2
	else
		rm -rf "$WORK"
		if [ -n "$SPOOL_WORK" ]; then
			rm -rf "$SPOOL_WORK"
		fi
		if [ -n "$INTAKE_WORK" ]; then
			rm -rf "$INTAKE_WORK"
		fi
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
go build -o "$BIN/intakeload" ./bench/cmd/intakeload

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
if "$BIN/moat" serve --help 2>&1 | grep -q -- --web-listen; then
	MOAT_EXTRA+=(--web-listen "" --metrics-listen "")
fi

start_moat() {
	: >"$WORK/moat.log"
	rm -f "$WORK/moat.addrs"
	GOMAXPROCS=$SERVER_THREADS "$BIN/moat" serve --dev --data "$DATA" --zone "$ZONE" --log-level warn \
		--dns-listen "127.0.0.1:$MOAT_DNS" --https-listen "127.0.0.1:$MOAT_HTTPS" \
		--http-listen "127.0.0.1:$MOAT_HTTP" --addrs-file "$WORK/moat.addrs" "${MOAT_EXTRA[@]}" >>"$WORK/moat.log" 2>&1 &
	MOAT_PID=$!
	PIDS+=("$MOAT_PID")
	# --addrs-file is written once every listener is bound.
	wait_for 60 "moat serve (log: $WORK/moat.log)" test -s "$WORK/moat.addrs"
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

# The intake benchmark hosts no domains: it has its own Moat (below).
if [ "$MODE" != intake ] && [ "$MODE" != dmarc ]; then
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

# --- TLS-RPT intake: Moat (durable) vs smtp-sink (discards) ---------------

RESULTS_INTAKE=$WORK/results-intake
: >"$RESULTS_INTAKE"
IMOAT_PID=
IMOAT_HTTPS=
IMOAT_SMTP=
IDATA=
SINK_PID=
SINK_PORT=

# bench_moat SPOOL NAME runs a Moat for the intake benchmark with its
# database on a disk (INTAKE_BASE): reports are acknowledged only once
# committed with synchronous=FULL (the fsync of /dev/shm costs nothing).
# The per-IP limits are lifted: every client is 127.0.0.1. SPOOL is
# intake.smtp_spool. It sets BM_WORK, BM_DATA, BM_HTTPS, BM_SMTP, BM_PID.
bench_moat() {
	local spool=$1 name=$2
	BM_WORK=$(mktemp -d "$INTAKE_BASE/moat-bench-$name.XXXXXX")
	BM_DATA=$BM_WORK/data
	BM_HTTPS=$(free_port)
	BM_SMTP=$(free_port)
	: >"$WORK/moat-$name.log"
	MOAT_INTAKE_SMTP_SPOOL=$spool MOAT_INTAKE_RATE_PER_IP=1000000 MOAT_INTAKE_SMTP_CONNS_PER_IP=10000 GOMAXPROCS=$SERVER_THREADS \
		"$BIN/moat" serve --dev --data "$BM_DATA" --log-level warn \
		--https-listen "127.0.0.1:$BM_HTTPS" --http-listen "" --dns-listen "" \
		--smtp-listen "127.0.0.1:$BM_SMTP" --web-listen "" --metrics-listen "" --addrs-file "$BM_WORK/moat.addrs" >>"$WORK/moat-$name.log" 2>&1 &
	BM_PID=$!
	PIDS+=("$BM_PID")
	wait_for 60 "moat serve (log: $WORK/moat-$name.log)" test -s "$BM_WORK/moat.addrs"
}

# start_intake_moat runs the Moat that answers report mail only once its
# reports are stored (intake.smtp_spool: false).
start_intake_moat() {
	bench_moat false intake
	INTAKE_WORK=$BM_WORK IDATA=$BM_DATA IMOAT_HTTPS=$BM_HTTPS IMOAT_SMTP=$BM_SMTP IMOAT_PID=$BM_PID
}

# start_spool_moat runs a second Moat, with intake.smtp_spool (the
# default): report mail is answered once the message is committed to the
# spool (checked to hold a report first), and its reports are stored
# afterwards, when the intake is quiet (issue 9 item 8).
start_spool_moat() {
	bench_moat true spool
	SPOOL_WORK=$BM_WORK SDATA=$BM_DATA SMOAT_HTTPS=$BM_HTTPS SMOAT_SMTP=$BM_SMTP SMOAT_PID=$BM_PID
}

# start_sink runs Postfix's smtp-sink: one process, one event loop, every
# message read to the end and thrown away (no parsing, no disk).
start_sink() {
	local user=()
	SINK_PORT=$(free_port)
	if [ "$(id -u)" = 0 ]; then
		user=(-u nobody) # required when started as root
	fi
	smtp-sink "${user[@]}" -h reports.sts.moat.test "127.0.0.1:$SINK_PORT" 256 >"$WORK/smtp-sink.log" 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	wait_for 10 "smtp-sink (log: $WORK/smtp-sink.log)" sh -c "ss -Htln 'sport = :$SINK_PORT' | grep -q ."
}

# stored_reports KIND [STATUS] prints how many reports of KIND (tlsrpt or
# dmarc) Moat's database holds, with status STATUS when given, as `moat
# reports KIND list` counts them.
stored_reports() {
	local kind=$1 status=() data=${3:-$IDATA}
	if [ -n "${2:-}" ]; then
		status=(--status "$2")
	fi
	"$BIN/moat" reports "$kind" list --data "$data" --json --limit 1 "${status[@]}" 2>>"$WORK/moat-intake.log" |
		sed -n 's/^  "total": \([0-9]*\).*/\1/p'
}

# run_intake KEY PEER ROUND ARGS... runs one intakeload run; ARGS are its
# -mode, -size and other flags. Moat's runs require every report to be
# answered as stored with a distinct id, and the database to hold exactly
# as many more reports as were acknowledged, none of them invalid.
run_intake() {
	local key=$1 peer=$2 round=$3
	shift 3
	local out=$WORK/intake-$key-$peer-$round.txt dur=$DURATION n=$INTAKE_N port pid mode expect=() gp kind=tlsrpt
	[ "$round" = warmup ] && dur=2
	case " $* " in *" -size large "*) n=$((INTAKE_N / 4)) ;; esac
	case " $* " in *" -kind dmarc "*) kind=dmarc ;; esac
	case " $* " in *" -mode smtp "*) mode=smtp ;; *) mode=https ;; esac
	local data=""
	case $peer in
	moat)
		pid=$IMOAT_PID
		data=$IDATA
		expect=(-expect-stored)
		port=$IMOAT_HTTPS
		[ $mode = smtp ] && port=$IMOAT_SMTP
		;;
	spool)
		pid=$SMOAT_PID
		data=$SDATA
		expect=(-expect-spooled)
		port=$SMOAT_SMTP
		;;
	*)
		pid=$SINK_PID
		port=$SINK_PORT
		;;
	esac
	local stored0 stored1 before after drained drain_s="" drain_us=""
	[ -n "$data" ] && stored0=$(stored_reports "$kind" "" "$data")
	"$BIN/intakeload" -addr "127.0.0.1:$port" -c "$INTAKE_CLIENTS" -d "${dur}s" -n "$n" \
		-run "$key-$peer-$round" -wait "${expect[@]}" "$@" >"$out" 2>&1 &
	gp=$!
	PIDS+=("$gp")
	# The reports are built (and compressed) before the clock starts.
	wait_for 120 "intakeload to build its reports ($out)" \
		sh -c "grep -qx ready '$out' || ! kill -0 $gp"
	before=$(cpu_ticks "$pid")
	kill -USR1 "$gp" 2>/dev/null || true
	local rc=0
	wait "$gp" || rc=$?
	after=$(cpu_ticks "$pid")
	forget_pid "$gp"
	if [ "$rc" != 0 ]; then
		echo "intake load ($key) against $peer failed:" >&2
		cat "$out" >&2
		exit 1
	fi
	local reps rps json wire conns refused
	reps=$(awk '$1 == "reports" {print $2}' "$out")
	rps=$(awk '$1 == "reports/s" {print $2}' "$out")
	json=$(awk '$1 == "json-bytes" {print $2}' "$out")
	wire=$(awk '$1 == "wire-bytes" {print $2}' "$out")
	conns=$(awk '$1 == "connections" {print $2}' "$out")
	refused=$(awk '$1 == "refused" && $2 != 0 {print $2}' "$out")
	if [ -z "$reps" ] || [ "$reps" -eq 0 ]; then
		echo "intake load ($key) against $peer acknowledged no report:" >&2
		cat "$out" >&2
		exit 1
	fi
	local check=""
	if [ "$peer" = spool ]; then
		# The spool's reports are stored once the intake is quiet: wait
		# for all of them (bounded), and count that CPU apart.
		local t0=$SECONDS
		while [ "$(($(stored_reports "$kind" "" "$data") - stored0))" -lt "$reps" ]; do
			if ((SECONDS - t0 > 900)); then
				echo "$key: $reps reports spooled but not all stored after 900 s" >&2
				exit 1
			fi
			sleep 0.5
		done
		drained=$(cpu_ticks "$pid")
		drain_s=$((SECONDS - t0))
		drain_us=$(awk -v t=$((drained - before)) -v hz="$HZ" -v r="$reps" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
	fi
	if [ -n "$data" ]; then
		stored1=$(stored_reports "$kind" "" "$data")
		if [ "$((stored1 - stored0))" != "$reps" ]; then
			echo "$key: $reps reports acknowledged but $((stored1 - stored0)) stored ($stored0 before, $stored1 after)" >&2
			exit 1
		fi
		if [ "$(stored_reports "$kind" invalid "$data")" != 0 ] || [ "$(stored_reports "$kind" warnings "$data")" != 0 ]; then
			echo "$key: reports stored as invalid or with warnings: the generator's reports should conform" >&2
			exit 1
		fi
		check="stored $((stored1 - stored0))"
		[ -n "$drain_s" ] && check="$check (all stored ${drain_s}s after the run; CPU with storing them $drain_us µs/report)"
	fi
	[ "$round" = warmup ] && return 0
	local us
	us=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$reps" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$peer" "$round" "$reps" "$rps" "$us" "$json" "$wire" "$conns" "$drain_us" >>"$RESULTS_INTAKE"
	printf '  %-22s %-5s round %s: %8s reports %9s reports/s %8s µs CPU/report  %s conns%s%s  load %s%s\n' \
		"$key" "$peer" "$round" "$reps" "$rps" "$us" "$conns" "${refused:+ ($refused refused with 421, retried)}" \
		"${check:+  $check}" "$(load_avg)" \
		"$([ "$reps" = "$n" ] && echo "  (all $n built reports sent before ${dur}s)")"
}

# The paths measured: KEY|PEERS|intakeload flags. Keys name the path and
# the report size (1k: ~1 KB of JSON, one policy, 2 failure details; 20k:
# ~22 KB, 80 failure details; dmarc 1k: ~1.1 KB of XML, one record; dmarc
# 20k: ~20 KB, 32 records, gzipped as application/gzip attachments).
INTAKE_PATHS=(
	"https-gzip-1k|moat|-mode https -size small -encoding gzip"
	"https-json-1k|moat|-mode https -size small -encoding json"
	"https-gzip-20k|moat|-mode https -size large -encoding gzip"
	"https-fresh-gzip-1k|moat|-mode https -size small -encoding gzip -per-conn 1"
	"smtp-1k|moat spool sink|-mode smtp -size small -per-conn 1"
	"smtp-10perconn-1k|moat sink|-mode smtp -size small -per-conn 10"
	"smtp-starttls-1k|moat|-mode smtp -size small -per-conn 1 -starttls"
	"smtp-20k|moat spool sink|-mode smtp -size large -per-conn 1"
	"smtp-dmarc-1k|moat spool sink|-mode smtp -kind dmarc -size small -per-conn 1"
	"smtp-dmarc-20k|moat spool sink|-mode smtp -kind dmarc -size large -per-conn 1"
)
# `dmarc` runs the rows of one message per connection only.
if [ "$MODE" = dmarc ]; then
	INTAKE_PATHS=(
		"smtp-1k|moat spool sink|-mode smtp -size small -per-conn 1"
		"smtp-dmarc-1k|moat spool sink|-mode smtp -kind dmarc -size small -per-conn 1"
		"smtp-20k|moat spool sink|-mode smtp -size large -per-conn 1"
		"smtp-dmarc-20k|moat spool sink|-mode smtp -kind dmarc -size large -per-conn 1"
	)
fi

if [ "$MODE" = intake ] || [ "$MODE" = dmarc ] || [ "$MODE" = all ]; then
	if [ -n "$MOAT_PID" ]; then
		stop_moat # the seeded one: no CPU taken from the intake runs
	fi
	start_intake_moat
	start_spool_moat
	start_sink
	echo "intake: $INTAKE_CLIENTS clients, ${DURATION}s per run, $ROUNDS rounds, database on $(df --output=source "$INTAKE_BASE" | tail -1)" \
		"($INTAKE_BASE), smtp-sink of Postfix $(dpkg-query -W -f '${Version}' postfix 2>/dev/null || echo '?'), load $(load_avg)"
	for spec in "${INTAKE_PATHS[@]}"; do
		IFS='|' read -r key peers flags <<<"$spec"
		read -ra args <<<"$flags"
		for peer in $peers; do
			run_intake "$key" "$peer" warmup "${args[@]}"
		done
		for r in $(seq "$ROUNDS"); do
			order=$peers
			if ! ((r % 2)); then
				order=$(echo "$peers" | awk '{for (i = NF; i >= 1; i--) printf "%s ", $i}')
			fi
			for peer in $order; do
				run_intake "$key" "$peer" "$r" "${args[@]}"
			done
		done
	done
	INTAKE_STORED="$(stored_reports tlsrpt) TLS and $(stored_reports dmarc) DMARC"
	INTAKE_DB_KB=$(du -sk "$IDATA" | cut -f1)
	stop_pid "$IMOAT_PID"
	forget_pid "$IMOAT_PID"
	stop_pid "$SMOAT_PID"
	forget_pid "$SMOAT_PID"
	stop_pid "$SINK_PID"
	forget_pid "$SINK_PID"
	# RFC 8460 reports are decoded by internal/tlsrpt; its Go benchmark
	# decodes a report of about 1 MB (5,000 failure details).
	if [ "$MODE" != dmarc ]; then
		go test -run '^$' -bench '^BenchmarkDecode$' -benchtime 2s -count 3 ./internal/tlsrpt/ >"$WORK/decode-bench.txt" 2>&1 ||
			{ cat "$WORK/decode-bench.txt" >&2; exit 1; }
	fi
fi

# --- DMARC aggregate reports imported from files: moat import -------------

# import_dmarc NAME FILE imports FILE with `moat import --json` into a new
# database on INTAKE_BASE (a disk), under /usr/bin/time -v, and prints the
# wall time, the peak RSS and what was stored.
DMARC_IMPORTS=$WORK/dmarc-imports
: >"$DMARC_IMPORTS"
import_dmarc() {
	local name=$1 file=$2 d out
	d=$(mktemp -d "$INTAKE_BASE/moat-bench-import.XXXXXX")
	out=$WORK/import-$name
	local load0 rc=0
	load0=$(load_avg)
	timeout 1800 /usr/bin/time -v "$BIN/moat" import --data "$d/data" --json --progress never "$file" \
		>"$out.json" 2>"$out.time" || rc=$?
	rm -rf "$d"
	if [ "$rc" != 0 ]; then
		echo "moat import of $file failed ($rc):" >&2
		cat "$out.json" "$out.time" >&2
		exit 1
	fi
	local wall rss outcome records
	# "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s}' "$out.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out.time")
	outcome=$(grep -o '"outcome": *"[a-z]*"' "$out.json" | head -1 | sed 's/.*"\([a-z]*\)"$/\1/')
	records=$(grep -o '"records": *[0-9]*' "$out.json" | head -1 | sed 's/.*: *//')
	if [ "$outcome" != stored ]; then
		echo "moat import of $file: outcome '${outcome:-?}', want stored:" >&2
		cat "$out.json" >&2
		exit 1
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(stat -c %s "$file")" "${records:-?}" "$wall" "$rss" "$load0" >>"$DMARC_IMPORTS"
	printf '  import %-10s %12s bytes %9s records  %8s s wall  %8s KiB peak RSS  load %s\n' \
		"$name" "$(stat -c %s "$file")" "${records:-?}" "$wall" "$rss" "$load0"
}

if [ "$MODE" = dmarc ] || [ "$MODE" = all ]; then
	# CORPORA, else MOAT_CORPORA (as the tests), else ../shared/corpora
	# beside the repository (or beside its worktree's parent).
	if [ -z "${CORPORA:-}" ]; then
		CORPORA=${MOAT_CORPORA:-$ROOT/../shared/corpora}
		[ -d "$CORPORA" ] || [ -n "${MOAT_CORPORA:-}" ] || CORPORA=$ROOT/../../shared/corpora
	fi
	if [ ! -x /usr/bin/time ]; then
		echo "missing /usr/bin/time (apt-get install -y time): the import benchmarks need its peak RSS" >&2
		exit 1
	fi
	# The largest DMARC aggregate report of the shared corpora (a file
	# named .xml, with a <feedback> element), read in place: the corpora
	# are never copied into the repository.
	SAMPLE=
	if [ -d "$CORPORA" ]; then
		SAMPLE=$(find "$CORPORA" -type f -name '*.xml' -size +1k -printf '%s\t%p\n' | sort -rn |
			while IFS=$'\t' read -r _ f; do
				if grep -q '<feedback' "$f"; then
					echo "$f"
					break
				fi
			done)
	fi
	echo "dmarc import: moat import --json into a new SQLite database on $INTAKE_BASE, /usr/bin/time -v, load $(load_avg)"
	if [ -n "$SAMPLE" ]; then
		echo "  sample: $SAMPLE (read in place)"
		import_dmarc sample "$SAMPLE"
	else
		echo "  sample: SKIPPED, no DMARC aggregate report found under $CORPORA (set CORPORA)"
	fi
	GEN=$WORK/generated-$DMARC_RECORDS.xml.gz
	"$BIN/intakeload" -dmarc-file "$GEN" -dmarc-records "$DMARC_RECORDS"
	echo "  generated: $DMARC_RECORDS records, $(stat -c %s "$GEN") bytes gzipped"
	import_dmarc generated "$GEN"
fi

# --- report --------------------------------------------------------------

if [ -s "$RESULTS" ]; then
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
fi

if [ "$MODE" = memory ] || [ "$MODE" = all ]; then
	echo
	echo "== memory"
	awk -v e="$RSS_EMPTY" -v f="$RSS_FULL" -v n="$N" 'BEGIN {
		printf "moat serve RSS: %d KiB with 1 domain, %d KiB with %d more: %.0f bytes per domain\n", e, f, n, (f - e) * 1024 / n }'
	cat "$WORK/snapmem.txt"
fi

if [ -s "$RESULTS_INTAKE" ]; then
	echo
	echo "== intake: median of $ROUNDS runs ($INTAKE_CLIENTS clients; $(nproc) CPUs shared by the server and the load generator)"
	echo "   Moat acknowledges a report once committed to SQLite (WAL, synchronous=FULL) on $INTAKE_BASE;"
	echo "   smtp-sink reads each message and discards it: the ceiling, not durable, no parsing."
	echo "   JSON B: mean report size; sent B: mean HTTP body or SMTP message (base64 in multipart/report)."
	awk -F'\t' '
	function median(list,    a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{
		k = $1 SUBSEP $2
		if (!(k in reps)) { order[++nk] = k }
		reps[k] = reps[k] " " $4; rps[k] = rps[k] " " $5; us[k] = us[k] " " $6; json[k] = $7; wire[k] = $8
		if ($10 != "") dus[k] = dus[k] " " $10
	}
	END {
		printf "%-20s %-5s %7s %7s %8s %10s %11s %15s %10s %10s %10s %16s\n", "path", "peer", "JSON B", "sent B", "clients",
			"reports", "reports/s", "CPU µs/report", "rate M/s", "CPU M/s", "rate S/s", "with storing µs"
		for (i = 1; i <= nk; i++) {
			mus[order[i]] = median(us[order[i]]); mrps[order[i]] = median(rps[order[i]])
		}
		for (i = 1; i <= nk; i++) {
			k = order[i]
			split(k, p, SUBSEP)
			m = p[1] SUBSEP "moat"; sp = p[1] SUBSEP "spool"
			rr = "-"; cr = "-"; sr = "-"
			if (p[2] == "sink" && (m in mus) && mus[k] > 0 && mrps[k] > 0) {
				rr = sprintf("%.2f", mrps[m] / mrps[k]); cr = sprintf("%.2f", mus[m] / mus[k])
			}
			if (p[2] == "sink" && (sp in mrps) && mrps[k] > 0) {
				sr = sprintf("**%.2f**", mrps[sp] / mrps[k])
			}
			ds = (k in dus) ? sprintf("%.2f", median(dus[k])) : "-"
			printf "%-20s %-5s %7d %7d %8d %10d %11.0f %15.2f %10s %10s %10s %16s\n", p[1], p[2], json[k], wire[k], clients,
				median(reps[k]), mrps[k], mus[k], rr, cr, sr, ds
		}
	}' clients="$INTAKE_CLIENTS" "$RESULTS_INTAKE"
	echo "   rate M/s: Moat's reports/s over smtp-sink's; CPU M/s: Moat's CPU per report over smtp-sink's."
	echo "   spool: Moat with intake.smtp_spool (answers once the checked message is committed to the spool);"
	echo "   rate S/s: its reports/s over smtp-sink's; with storing µs: its CPU per report until every report was stored."
	echo "   Moat's database after the runs: $INTAKE_STORED reports, $INTAKE_DB_KB KiB."
	[ -s "$WORK/decode-bench.txt" ] && awk '/^BenchmarkDecode/ {
		for (i = 1; i <= NF; i++) { if ($(i + 1) == "ns/op") ns = $i; if ($(i + 1) == "MB/s") mbs = $i }
		n++; nss[n] = ns; bytes = mbs * ns / 1e3
	}
	END {
		for (i = 2; i <= n; i++) { t = nss[i]; for (j = i - 1; j >= 1 && nss[j] > t; j--) nss[j + 1] = nss[j]; nss[j + 1] = t }
		med = nss[int((n + 1) / 2)]
		printf "decode (internal/tlsrpt BenchmarkDecode, median of %d): %.2f ms per report of %.0f bytes: %.2f ms per MB\n",
			n, med / 1e6, bytes, med / bytes
	}' "$WORK/decode-bench.txt"
fi

if [ -s "$DMARC_IMPORTS" ]; then
	echo
	echo "== DMARC aggregate reports imported from a file (moat import, SQLite on $INTAKE_BASE, synchronous=FULL)"
	awk -F'\t' '{printf "%-10s %12d bytes %10s records %9.2f s wall %10d KiB peak RSS  (load at start %s)\n", $1, $2, $3, $4, $5, $6}' "$DMARC_IMPORTS"
fi
