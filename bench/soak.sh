#!/usr/bin/env bash
# Soak: Moat's DNS and HTTPS policy service held at a share (LOAD, 0.8) of
# their measured maximum for DURATION seconds each, with the server's
# memory sampled throughout; it prints the achieved rates, errors and the
# resident memory over time, and fails when the rate was not held, an
# answer was wrong, or memory grew (the last minute's median RSS more than
# GROWTH percent and 8 MiB above the median of the minute after warm-up).
#
#   1. moat serve --dev with N hosted domains (bench/cmd/seed);
#   2. the maximum: dnsperf as fast as Moat answers, then tlsload (a new
#      TLS connection per fetch, as sending MTAs do), MEASURE seconds each;
#   3. DNS at LOAD x its maximum (dnsperf -Q) for DURATION seconds, then
#      HTTPS at LOAD x its maximum (tlsload -rate) for DURATION seconds,
#      RSS sampled every SAMPLE seconds.
#
# Everything listens on 127.0.0.1; every process started here is stopped
# on exit, and every load is bounded by its duration (and a timeout).
#
# Environment (defaults in brackets): N [10000], DURATION [600], MEASURE
# [10], LOAD [0.8], SAMPLE [10], GROWTH [10], SERVER_THREADS [2] (Moat's
# GOMAXPROCS), FRESH_CONNS [50], DNS_CLIENTS [8], DNS_OUTSTANDING [200],
# WORK_BASE [/dev/shm], KEEP_WORK [0].
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

N=${N:-10000}
DURATION=${DURATION:-600}
MEASURE=${MEASURE:-10}
LOAD=${LOAD:-0.8}
SAMPLE=${SAMPLE:-10}
GROWTH=${GROWTH:-10}
SERVER_THREADS=${SERVER_THREADS:-2}
FRESH_CONNS=${FRESH_CONNS:-50}
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-200}
WORK_BASE=${WORK_BASE:-/dev/shm}
KEEP_WORK=${KEEP_WORK:-0}
ZONE=sts.test

for tool in dnsperf kdig; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "soak: $tool is missing: apt-get install -y dnsperf knot-dnsutils" >&2
		exit 1
	fi
done
if [ "$DURATION" -lt 180 ] || [ "$DURATION" -gt 7200 ]; then
	echo "soak: DURATION=$DURATION: want 180 to 7200 seconds (a minute of warm-up, one to compare with, the last)" >&2
	exit 2
fi

WORK=$(mktemp -d "$WORK_BASE/moat-soak.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$KEEP_WORK" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

echo "building ..."
go build -o "$WORK/moat" ./cmd/moat
go build -o "$WORK/seed" ./bench/cmd/seed
go build -o "$WORK/tlsload" ./bench/cmd/tlsload

echo "seeding $N domains ..."
"$WORK/seed" -data "$WORK/data" -n "$N" -zone "$ZONE" -zone-out "$WORK/zone" \
	-policy-out "$WORK/policy.txt" -queries-out "$WORK/queries.txt"

GOMAXPROCS=$SERVER_THREADS "$WORK/moat" serve --dev --data "$WORK/data" --zone "$ZONE" --log-level warn \
	--dns-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen "" --smtp-listen "" \
	--report-listen "" --web-listen "" --metrics-listen "" --addrs-file "$WORK/addrs" >"$WORK/moat.log" 2>&1 &
MOAT=$!
PIDS+=("$MOAT")
for _ in $(seq 600); do
	[ -s "$WORK/addrs" ] && break
	kill -0 "$MOAT" 2>/dev/null || { cat "$WORK/moat.log" >&2; exit 1; }
	sleep 0.1
done
[ -s "$WORK/addrs" ] || { echo "moat serve did not start (log: $WORK/moat.log)" >&2; exit 1; }
addr() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/addrs" "$1"; }
DNS_ADDR=$(addr dns)
HTTPS_ADDR=$(addr https)
DNS_PORT=${DNS_ADDR##*:}
if [ -z "$(kdig @127.0.0.1 -p "$DNS_PORT" +short "d$N.test._mta-sts.$ZONE" TXT)" ]; then
	echo "Moat does not answer d$N.test._mta-sts.$ZONE TXT" >&2
	exit 1
fi

# dnsperf_run SECONDS [QPS] OUT: one dnsperf run; fails unless every answer
# was NOERROR.
dnsperf_run() {
	local dur=$1 qps=$2 out=$3 opt=()
	[ "$qps" = 0 ] || opt=(-Q "$qps")
	timeout $((dur + 60)) dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -l "$dur" \
		-c "$DNS_CLIENTS" -q "$DNS_OUTSTANDING" "${opt[@]}" >"$out" 2>&1
	local done
	done=$(awk '/Queries completed:/ {print $3}' "$out")
	if [ -z "$done" ] || [ "$done" -eq 0 ] || ! grep -q "NOERROR $done " "$out"; then
		echo "dnsperf: answers other than NOERROR, or none:" >&2
		cat "$out" >&2
		exit 1
	fi
}

# sample PID OUT: RSS in KiB every SAMPLE seconds, "seconds rss" lines,
# until killed.
sample() {
	local t=0
	while kill -0 "$1" 2>/dev/null; do
		echo "$t $(rss_kb "$1")" >>"$2"
		sleep "$SAMPLE"
		t=$((t + SAMPLE))
	done
}

# verdict NAME SAMPLES TARGET ACHIEVED LATE: prints the memory over time and
# the rate, and records a failure.
FAILED=0
verdict() {
	local name=$1 samples=$2 target=$3 achieved=$4
	local per_min=$((60 / SAMPLE))
	[ "$per_min" -ge 1 ] || per_min=1
	# Medians of the minute after the first (warm-up) and of the last one.
	local first last
	first=$(awk -v a="$per_min" 'NR > a && NR <= 2 * a {print $2}' "$samples" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
	last=$(tail -n "$per_min" "$samples" | awk '{print $2}' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
	echo "  RSS (MiB) every ${SAMPLE}s: $(awk '{printf "%.0f ", $2 / 1024}' "$samples")"
	local growth
	growth=$(awk -v f="$first" -v l="$last" 'BEGIN {printf "%.1f", (l - f) * 100 / f}')
	printf '  %s: target %.0f/s, achieved %.0f/s (%s%%); RSS after warm-up %.1f MiB, last minute %.1f MiB (%+.1f%%)\n' \
		"$name" "$target" "$achieved" "$(awk -v a="$achieved" -v t="$target" 'BEGIN {printf "%.1f", a * 100 / t}')" \
		"$(awk -v f="$first" 'BEGIN {print f / 1024}')" "$(awk -v l="$last" 'BEGIN {print l / 1024}')" "$growth"
	if awk -v a="$achieved" -v t="$target" 'BEGIN {exit !(a < 0.95 * t)}'; then
		echo "  $name: FAILED to hold the rate (under 95% of the target)"
		FAILED=1
	fi
	if awk -v f="$first" -v l="$last" -v g="$GROWTH" 'BEGIN {exit !(l > f * (1 + g / 100) && l - f > 8192)}'; then
		echo "  $name: FAILED: memory grew by more than ${GROWTH}% and 8 MiB"
		FAILED=1
	fi
}

echo
echo "== the maximum, ${MEASURE}s each (N=$N, GOMAXPROCS=$SERVER_THREADS, load $(cut -d' ' -f1-3 /proc/loadavg))"
dnsperf_run 2 0 "$WORK/dns-warm.txt"
dnsperf_run "$MEASURE" 0 "$WORK/dns-max.txt"
DNS_MAX=$(awk '/Queries per second:/ {print $4}' "$WORK/dns-max.txt")
"$WORK/tlsload" -addr "$HTTPS_ADDR" -n "$N" -c "$FRESH_CONNS" -d 2s >/dev/null
"$WORK/tlsload" -addr "$HTTPS_ADDR" -n "$N" -c "$FRESH_CONNS" -d "${MEASURE}s" >"$WORK/https-max.txt"
HTTPS_MAX=$(awk '/^req\/s/ {print $2}' "$WORK/https-max.txt")
echo "  DNS ${DNS_MAX} q/s, HTTPS (new TLS connection per fetch) ${HTTPS_MAX} fetches/s"

DNS_TARGET=$(awk -v m="$DNS_MAX" -v l="$LOAD" 'BEGIN {printf "%d", m * l}')
HTTPS_TARGET=$(awk -v m="$HTTPS_MAX" -v l="$LOAD" 'BEGIN {printf "%.1f", m * l}')

echo
echo "== DNS at ${LOAD} of the maximum: $DNS_TARGET q/s for ${DURATION}s"
sample "$MOAT" "$WORK/rss-dns.txt" &
SAMPLER=$!
PIDS+=("$SAMPLER")
dnsperf_run "$DURATION" "$DNS_TARGET" "$WORK/dns-soak.txt"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
DNS_GOT=$(awk '/Queries per second:/ {print $4}' "$WORK/dns-soak.txt")
echo "  $(grep -E 'Queries lost:' "$WORK/dns-soak.txt" | sed 's/^ *//'), $(grep -E 'Average Latency' "$WORK/dns-soak.txt" | sed 's/^ *//')"
verdict dns "$WORK/rss-dns.txt" "$DNS_TARGET" "$DNS_GOT"

echo
echo "== HTTPS at ${LOAD} of the maximum: $HTTPS_TARGET fetches/s for ${DURATION}s"
sample "$MOAT" "$WORK/rss-https.txt" &
SAMPLER=$!
PIDS+=("$SAMPLER")
if ! timeout $((DURATION + 60)) "$WORK/tlsload" -addr "$HTTPS_ADDR" -n "$N" -c "$FRESH_CONNS" \
	-d "${DURATION}s" -rate "$HTTPS_TARGET" >"$WORK/https-soak.txt" 2>&1; then
	cat "$WORK/https-soak.txt" >&2
	FAILED=1
fi
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
HTTPS_GOT=$(awk '/^req\/s/ {print $2}' "$WORK/https-soak.txt")
echo "  errors $(awk '/^errors/ {print $2}' "$WORK/https-soak.txt"), late $(awk '/^late/ {print $2}' "$WORK/https-soak.txt")"
verdict https "$WORK/rss-https.txt" "$HTTPS_TARGET" "${HTTPS_GOT:-0}"

echo
if [ "$FAILED" = 0 ]; then
	echo "soak: rates held and memory flat"
else
	echo "soak: FAILED (see above)"
	exit 1
fi
