#!/usr/bin/env bash
# The dashboard's and API's server time with a realistic organization:
# `moat seed --domains DOMAINS --days DAYS --dmarc-days DMARC_DAYS` (defaults 1000, 365 and 30), then
# every dashboard page and API list endpoint requested N times by
# bench/cmd/dashload, which reads the server time from the Server-Timing
# header and prints p50/p95/max. Once on SQLite (a disk under WORK_BASE) and
# once on a throwaway PostgreSQL (initdb/pg_ctl, as the postgres user when
# run as root). Goal: every p95 under 100 ms.
#
# Environment (defaults in brackets): DOMAINS [1000], DAYS [365], DMARC_DAYS [30], N [30]
# requests per URL, DB [sqlite postgres], WORK_BASE [/var/tmp], KEEP_WORK [0].
# Everything listens on 127.0.0.1; every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

DOMAINS=${DOMAINS:-1000}
DAYS=${DAYS:-365}
DMARC_DAYS=${DMARC_DAYS:-30}
N=${N:-30}
DB=${DB:-sqlite postgres}
WORK_BASE=${WORK_BASE:-/var/tmp}
WORK=$(mktemp -d "$WORK_BASE/moat-dash.XXXXXX")
chmod 755 "$WORK"
PIDS=()
PGDATA=
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "$PGDATA" ]; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; fi
	if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building ..."
go build -o "$WORK/moat" ./cmd/moat
go build -o "$WORK/dashload" ./bench/cmd/dashload

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# run_one NAME DATABASE_ARGS...: seed, start moat serve, measure, stop.
run_one() {
	local name=$1
	shift
	local data=$WORK/data-$name
	mkdir -p "$data"
	local m=("$WORK/moat" --data "$data" "$@")
	echo
	echo "== $name: seeding $DOMAINS domains, $DAYS days of TLS reports, the last $DMARC_DAYS with DMARC reports ..."
	"${m[@]}" seed --org bench --domains "$DOMAINS" --days "$DAYS" --dmarc-days "$DMARC_DAYS"
	echo "bench-password-$$" >"$WORK/pw"
	"${m[@]}" users create "owner@bench.example" --org bench --role owner --password-file "$WORK/pw" >/dev/null
	local token
	token=$("${m[@]}" tokens create --org bench --scope read --name dashload | tail -1 | awk '{print $NF}')
	# Retention off for the measured server: a new leader runs it at once,
	# and on the seeded year it would clear the raw bytes of 750,000
	# reports while the pages are measured (a server in use prunes a day
	# at a time).
	MOAT_RETENTION_RAW=0 MOAT_RETENTION_REPORTS=0 MOAT_RETENTION_ROLLUPS=0 \
		"${m[@]}" serve --dev --log-level warn --dns-listen "" --https-listen 127.0.0.1:0 --http-listen "" \
		--smtp-listen "" --web-listen 127.0.0.1:0 --metrics-listen "" --addrs-file "$WORK/addrs-$name" >"$WORK/serve-$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 600); do [ -s "$WORK/addrs-$name" ] && break; sleep 0.1; done
	local web
	web=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["web"])' "$WORK/addrs-$name")
	echo "== $name: server time of every page and list endpoint"
	local rc=0
	"$WORK/dashload" -base "http://$web" -email owner@bench.example -password "bench-password-$$" -token "$token" -n "$N" || rc=$?
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return $rc
}

status=0
for db in $DB; do
	case $db in
	sqlite)
		run_one sqlite || status=1
		;;
	postgres)
		PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
		if [ ! -x "$PGBIN/initdb" ]; then
			echo "postgres: initdb not found (Debian package postgresql); skipped" >&2
			status=1
			continue
		fi
		PGDATA=$WORK/pg
		mkdir -p "$PGDATA"
		[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
		port=$(free_port)
		as_pg "$PGBIN/initdb" -D "$PGDATA" -U moat --auth=trust >/dev/null
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/log" -o "-h 127.0.0.1 -p $port -k $PGDATA -c fsync=on" start >/dev/null
		as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U moat moat
		run_one postgres --database "postgres://moat@127.0.0.1:$port/moat?sslmode=disable" || status=1
		;;
	*)
		echo "unknown DB $db" >&2
		status=1
		;;
	esac
done
exit $status
