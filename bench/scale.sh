#!/usr/bin/env bash
# The scale benchmark (issue 12): one run, every figure next to its reference from the same run.
#
#   bench/scale.sh                     # 10k, 100k and 1M leads on SQLite; 10k and 100k on PostgreSQL
#   REWARM_BENCH_SIZES="10000" REWARM_BENCH_PG_SIZES="" bench/scale.sh     # a quick look
#
# For each size it generates a lead file with ../shared/tools/gen_leads.py (fixed seed 7,
# 20 time zones; `went_quiet`, 30 %, matches no segment), then with the release binary:
#   import (rate, peak RSS) next to `sqlite3 .import` of the same file into a bare table,
#   the unchanged re-import, the first enrolment pass (`run --once`, nothing due yet),
#   `status`, and — at the largest size — an idle daemon's CPU over 30 s and `/metrics`
#   scrapes, then the send pass (`run --once` when everything is due) into smtp-sink next to
#   smtp-blast over 1 and 8 connections.
# Environment: CARGO_TARGET_DIR (default /var/tmp/rewarm-target), REWARM_BENCH_TOOLS (the folder
# with gen_leads.py and smtp-sink/), REWARM_BENCH_POSTGRES_URL (a server URL whose user may
# CREATE DATABASE; default postgres://postgres@127.0.0.1:5432/postgres), REWARM_BENCH_DIR,
# REWARM_BENCH_SINK_TARGET (where smtp-sink is built; default CARGO_TARGET_DIR), REWARM_BENCH_NO_BUILD
# (set: use the binaries already built), REWARM_BENCH_REIMPORT=0 / REWARM_BENCH_SEND=0 (skip those).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rewarm-target}"
TOOLS="${REWARM_BENCH_TOOLS:-$ROOT/../shared/tools}"
SIZES="${REWARM_BENCH_SIZES:-10000 100000 1000000}"
PG_SIZES="${REWARM_BENCH_PG_SIZES-10000 100000}"
PG_URL="${REWARM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
WORK="${REWARM_BENCH_DIR:-$(mktemp -d /var/tmp/rewarm-bench.XXXXXX)}"
POOL=8
BATCH=500
RAW_N=100000
# Imported at the reference date; the first email is due 1,000 days after the loss, so the
# enrolment pass sends nothing and the send pass (1,100 days on) finds everything due.
T_IMPORT="2026-12-03T12:00:00Z"
T_SEND="2029-12-07T12:00:00Z"

command -v sqlite3 >/dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)" >&2; exit 1; }
PROFILE="${REWARM_BENCH_PROFILE:-release}"   # `dev` only to try the script quickly
SINK_TARGET="${REWARM_BENCH_SINK_TARGET:-$CARGO_TARGET_DIR}"
if [ -z "${REWARM_BENCH_NO_BUILD:-}" ]; then
  cargo build --profile "$PROFILE" --bin rewarm >&2
  CARGO_TARGET_DIR="$SINK_TARGET" cargo build --release --manifest-path "$TOOLS/smtp-sink/Cargo.toml" >&2
fi
REWARM="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/rewarm"
SINK="$SINK_TARGET/release/smtp-sink"
BLAST="$SINK_TARGET/release/smtp-blast"
mkdir -p "$WORK"
echo "# work folder: $WORK" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(free_port)
"$SINK" --listen "127.0.0.1:$SINK_PORT" --stats "$WORK/sink.stats" 2>/dev/null &
SINK_PID=$!
DAEMON_PID=""
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
  kill "$SINK_PID" 2>/dev/null || true
}
trap cleanup EXIT
sleep 0.5

# `timed OUT CMD…`: runs CMD, writes "seconds max_rss_kib" to OUT. Exit status 3 (`leads
# import`: some rows rejected — gen_leads.py writes a few loss times inside DST gaps) is fine.
timed() {
  local out=$1 rc=0; shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null 2>"$out.err" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || { cat "$out.err" >&2; return 1; }
  tail -1 "$out" >"$out.tmp" && mv "$out.tmp" "$out"
}
field() { cut -d' ' -f"$2" "$1"; }
rate() { python3 -c "import sys; print(f'{$1/max($2,1e-9):,.0f}')"; }
accepted() { sed -n 's/.*accepted=\([0-9]*\).*/\1/p' "$WORK/sink.stats"; }

config() { # config FILE DATABASE_URL HTTP_PORT
  cat >"$1" <<EOF
database_url = "$2"
templates_dir = "$ROOT/templates"
default_timezone = "Europe/Paris"
[log]
level = "warn"
[compliance]
postal_address = "Acme Inc., 1 Example Street, 75001 Paris, France"
[sender]
from = "Claire at Acme <claire@acme.example>"
reply_to = "Claire Martin <claire.martin@acme.example>"
[inbound]
reply_domain = "reply.acme.example"
bounce_domain = "bounce.acme.example"
[transport]
kind = "smtp"
[transport.smtp]
host = "127.0.0.1"
port = $SINK_PORT
tls = "none"
pool_size = $POOL
[scheduler]
batch_size = $BATCH
tick = "5s"
[http]
listen = "127.0.0.1:$3"
EOF
  for reason in no_budget timing chose_competitor no_decision bad_fit; do
    printf '[[segments]]\nname = "%s"\nlost_reason = "%s"\ncampaign = "checkin"\n' "$reason" "$reason" >>"$1"
  done
  cat >>"$1" <<EOF
[campaigns.checkin]
first_after = "1000d"
every = "30d"
send_window = { days = "Mon-Sun", hours = "00:00-24:00" }
EOF
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")"); echo "${ROWS[-1]}" | tee -a "$WORK/rows.md" >&2; }

# One size on one backend: import, re-import, enrolment, status (and, when asked, idle CPU and
# /metrics), then the send pass.
run_size() { # run_size BACKEND N CSV IDLE
  local backend=$1 n=$2 csv=$3 idle=$4 dir="$WORK/$1-$2" url
  mkdir -p "$dir"
  if [ "$backend" = sqlite ]; then
    url="sqlite://$dir/rewarm.db"
  else
    local db="rewarm_bench_$n"
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    url="${PG_URL%/*}/$db"
  fi
  local http_port; http_port=$(free_port)
  config "$dir/rewarm.toml" "$url" "$http_port"
  local rw=("$REWARM" --config "$dir/rewarm.toml")
  "${rw[@]}" migrate >/dev/null

  timed "$dir/import" "${rw[@]}" --now "$T_IMPORT" leads import "$csv"
  row "$backend $n: import" "$(rate "$n" "$(field "$dir/import" 1)") leads/s, peak RSS $(( $(field "$dir/import" 2) / 1024 )) MiB" "sqlite3 .import: $SQLITE_IMPORT_RATE rows/s"
  if [ "${REWARM_BENCH_REIMPORT:-1}" = 1 ]; then
    timed "$dir/reimport" "${rw[@]}" --now "$T_IMPORT" leads import "$csv"
    row "$backend $n: unchanged re-import" "$(field "$dir/reimport" 1) s" "first import: $(field "$dir/import" 1) s"
  fi
  timed "$dir/enrol" "${rw[@]}" --now "$T_IMPORT" run --once
  row "$backend $n: first enrolment pass" "$(field "$dir/enrol" 1) s" "≤ 10 s at 1M"
  timed "$dir/status" "${rw[@]}" --now "$T_IMPORT" status
  row "$backend $n: status" "$(field "$dir/status" 1) s" "≤ 0.3 s at 1M"

  if [ "$idle" = yes ]; then
    "${rw[@]}" --now "$T_IMPORT" run >"$dir/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/metrics" >/dev/null && break; sleep 0.2; done
    sleep 20 # the first pass (with its start-up repair) is done
    local t0 t1 clk; clk=$(getconf CLK_TCK)
    t0=$(awk '{print $14+$15}' "/proc/$DAEMON_PID/stat")
    sleep 30
    t1=$(awk '{print $14+$15}' "/proc/$DAEMON_PID/stat")
    row "$backend $n: idle daemon, nothing due" "$(python3 -c "print(f'{100*($t1-$t0)/$clk/30:.2f} % of a core')")" "≤ 1 %"
    local scrapes=()
    for _ in $(seq 21); do scrapes+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$http_port/metrics")"); done
    row "$backend $n: /metrics scrape (median of 21)" "$(printf '%s\n' "${scrapes[@]}" | sort -n | sed -n 11p | python3 -c 'import sys; print(f"{float(sys.stdin.read())*1000:.1f} ms")')" "≤ 50 ms at 1M"
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
  fi

  [ "${REWARM_BENCH_SEND:-1}" = 1 ] || return 0
  local before after sent secs
  before=$(accepted)
  timed "$dir/send" "${rw[@]}" --now "$T_SEND" run --once
  sleep 0.3
  after=$(accepted)
  sent=$((after - before)); secs=$(field "$dir/send" 1)
  row "$backend $n: send pass ($sent due, pool $POOL, batch $BATCH)" "$(rate "$sent" "$secs") msg/s ($secs s)" "raw: $RAW_1 msg/s (1 conn), $RAW_8 msg/s (8 conns)"
}

# The raw client into the same sink, same run.
RAW_1=$("$BLAST" --to "127.0.0.1:$SINK_PORT" --n "$RAW_N" --conns 1 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
RAW_8=$("$BLAST" --to "127.0.0.1:$SINK_PORT" --n "$RAW_N" --conns 8 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')

sqlite_size() { # sqlite_size N IDLE
  local n=$1 csv="$WORK/leads-$1.csv"
  [ -f "$csv" ] || python3 "$TOOLS/gen_leads.py" "$n" "$csv" --seed 7 >/dev/null
  rm -f "$WORK/bare-$n.db"
  timed "$WORK/sqlite-import-$n" sqlite3 "$WORK/bare-$n.db" ".import --csv $csv bare"
  SQLITE_IMPORT_RATE=$(rate "$n" "$(field "$WORK/sqlite-import-$n" 1)")
  run_size sqlite "$n" "$csv" "$2"
}
# The smaller sizes, then PostgreSQL, then the largest SQLite size (idle daemon and /metrics
# there): rows print as they come (and go to $WORK/rows.md), the table at the end.
largest=$(printf '%s\n' $SIZES | sort -n | tail -1)
for n in $SIZES; do
  [ "$n" = "$largest" ] || sqlite_size "$n" no
done
for n in $PG_SIZES; do
  csv="$WORK/leads-$n.csv"
  [ -f "$csv" ] || python3 "$TOOLS/gen_leads.py" "$n" "$csv" --seed 7 >/dev/null
  rm -f "$WORK/bare-$n.db"
  timed "$WORK/sqlite-import-$n" sqlite3 "$WORK/bare-$n.db" ".import --csv $csv bare"
  SQLITE_IMPORT_RATE=$(rate "$n" "$(field "$WORK/sqlite-import-$n" 1)")
  run_size postgres "$n" "$csv" no
done
[ -n "$largest" ] && sqlite_size "$largest" yes

echo
echo "rewarm scale benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | rewarm | reference, same run |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
