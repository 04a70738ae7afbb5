#!/usr/bin/env bash
# The enrolment / status / idle benchmark (issue 12, parts 5–7): one run, every figure next
# to a reference measured in the same run.
#
#   bench/enrol.sh                          # 1M leads, SQLite and PostgreSQL
#   REWARM_BENCH_N=100000 bench/enrol.sh    # a quicker look
#   REWARM_BENCH_BACKENDS=sqlite bench/enrol.sh
#
# It generates the lead file with ../shared/tools/gen_leads.py (seed 7, 20 time zones;
# `went_quiet`, 30 %, matches no segment), imports it with the release binary, then times:
#   the first enrolment pass (`run --once`, nothing due yet): wall and CPU seconds, next to
#     `CREATE TABLE … AS SELECT * FROM leads` (a bare write of as many rows) in the same database;
#   `status` (median of 5 runs, whole process), next to `SELECT count(*) FROM leads`;
#   an idle daemon's CPU over 60 s (1M leads, nothing due, a third matching no segment);
#   `/metrics` scrapes (median of 21), next to `/healthz` of the same daemon.
# Environment: CARGO_TARGET_DIR (default /var/tmp/rewarm-target), REWARM_BENCH_TOOLS (the folder
# with gen_leads.py), REWARM_BENCH_POSTGRES_URL (a server whose user may CREATE DATABASE;
# default postgres://postgres@127.0.0.1:5432/postgres), REWARM_BENCH_DIR, REWARM_BENCH_NO_BUILD
# (set: use the binary already built), REWARM_BENCH_IDLE (seconds; default 60).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rewarm-target}"
TOOLS="${REWARM_BENCH_TOOLS:-$ROOT/../shared/tools}"
N="${REWARM_BENCH_N:-1000000}"
BACKENDS="${REWARM_BENCH_BACKENDS:-sqlite postgres}"
PG_URL="${REWARM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
WORK="${REWARM_BENCH_DIR:-$(mktemp -d /var/tmp/rewarm-enrol.XXXXXX)}"
IDLE="${REWARM_BENCH_IDLE:-60}"
# Imported at the reference date; the first email is due 1,000 days after the loss, so the
# enrolment pass and the idle daemon find nothing due.
T_IMPORT="2026-12-03T12:00:00Z"

command -v sqlite3 >/dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)" >&2; exit 1; }
[ -n "${REWARM_BENCH_NO_BUILD:-}" ] || cargo build --release --bin rewarm >&2
REWARM="$CARGO_TARGET_DIR/release/rewarm"
mkdir -p "$WORK"
echo "# work folder: $WORK" >&2
CSV="$WORK/leads-$N.csv"
[ -f "$CSV" ] || python3 "$TOOLS/gen_leads.py" "$N" "$CSV" --seed 7 >/dev/null

DAEMON_PID=""
trap '[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# `timed OUT CMD…`: runs CMD, writes "wall_seconds cpu_seconds max_rss_kib" to OUT. Exit status 3
# (`leads import`: some rows rejected — gen_leads.py writes a few loss times in DST gaps) is fine.
timed() {
  local out=$1 rc=0; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out" "$@" >/dev/null 2>"$out.err" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || { cat "$out.err" >&2; return 1; }
  tail -1 "$out" | awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' >"$out.tmp" && mv "$out.tmp" "$out"
}
field() { cut -d' ' -f"$2" "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.1f} ms')" "$1"; }
# The median wall time of 5 runs of CMD…, in seconds.
median5() { for _ in 1 2 3 4 5; do /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; done | median; }

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
[transport]
kind = "file"
outbox = "$(dirname "$1")/outbox"
[scheduler]
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
EOF
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")"); echo "${ROWS[-1]}" >&2; }

run_backend() { # run_backend BACKEND
  local backend=$1 dir="$WORK/$1" url count_ref bare_ref
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$backend" = sqlite ]; then
    url="sqlite://$dir/rewarm.db"
  else
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS rewarm_bench_enrol" -c "CREATE DATABASE rewarm_bench_enrol" >/dev/null
    base=${PG_URL%%\?*}; url="${base%/*}/rewarm_bench_enrol${PG_URL#"$base"}"
  fi
  local port; port=$(free_port)
  config "$dir/rewarm.toml" "$url" "$port"
  local rw=("$REWARM" --config "$dir/rewarm.toml")
  "${rw[@]}" migrate >/dev/null
  timed "$dir/import" "${rw[@]}" --now "$T_IMPORT" leads import "$CSV"
  if [ "$backend" = sqlite ]; then
    count_ref=(sqlite3 "$dir/rewarm.db" "SELECT count(*) FROM leads")
    bare_ref=(sqlite3 "$dir/rewarm.db" "CREATE TABLE bench_bare AS SELECT * FROM leads; DROP TABLE bench_bare")
  else
    count_ref=(psql -qAt "$url" -c "SELECT count(*) FROM leads")
    bare_ref=(psql -qAt "$url" -c "CREATE TABLE bench_bare AS SELECT * FROM leads" -c "DROP TABLE bench_bare")
  fi
  local leads; leads=$("${count_ref[@]}")

  timed "$dir/enrol" "${rw[@]}" --now "$T_IMPORT" run --once
  timed "$dir/bare" "${bare_ref[@]}"
  row "$backend: first enrolment pass, $leads new leads" "$(field "$dir/enrol" 1) s (CPU $(field "$dir/enrol" 2) s, peak RSS $(( $(field "$dir/enrol" 3) / 1024 )) MiB)" "bare copy of the $leads lead rows: $(field "$dir/bare" 1) s"

  local status count
  status=$(median5 "${rw[@]}" --now "$T_IMPORT" status)
  count=$(median5 "${count_ref[@]}")
  row "$backend: \`status\` (whole process, median of 5)" "$(ms "$status")" "\`SELECT count(*) FROM leads\`: $(ms "$count")"

  "${rw[@]}" --now "$T_IMPORT" run >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  sleep 15 # the first pass (with its start-up repair) is done
  local t0 t1 clk; clk=$(getconf CLK_TCK)
  t0=$(awk '{print $14+$15}' "/proc/$DAEMON_PID/stat")
  sleep "$IDLE"
  t1=$(awk '{print $14+$15}' "/proc/$DAEMON_PID/stat")
  row "$backend: idle daemon, nothing due, ${IDLE} s" "$(python3 -c "print(f'{100*($t1-$t0)/$clk/$IDLE:.2f} % of a core')")" "≤ 1 %"
  local metrics health
  metrics=$(for _ in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"; done | median)
  health=$(for _ in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/healthz"; done | median)
  row "$backend: \`/metrics\` scrape (median of 21)" "$(ms "$metrics")" "\`/healthz\` of the same daemon: $(ms "$health")"
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
}

for backend in $BACKENDS; do run_backend "$backend"; done

echo
echo "rewarm enrolment benchmark, $N leads, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | rewarm | reference, same run |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
