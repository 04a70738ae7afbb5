#!/usr/bin/env bash
# The scale benchmark (issue 12): one run, every figure next to its reference from the same run,
# printed as one Markdown table (the one in docs/performance.md).
#
#   bench/scale.sh                                   # every section
#   REWARM_BENCH_SECTIONS=send bench/scale.sh        # the send pass only
#   REWARM_BENCH_SECTIONS=send REWARM_BENCH_SEND_SIZES="10000" REWARM_BENCH_SCALE_OUT="" bench/scale.sh   # a quick look
#
# It builds the release binary and ../shared/tools/smtp-sink (the sink and the raw client
# smtp-blast), starts the sink, measures smtp-blast over 1 and 8 connections into it, then
# sources each section bench/sections/NAME.sh in the order of REWARM_BENCH_SECTIONS (default:
# every file there, send first; each section documents its own variables), and prints the table.
# A section adds rows with `row WHAT REWARM REFERENCE` (bench/lib.sh has the shared helpers).
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/rewarm-target), REWARM_BENCH_TOOLS (the folder
# with gen_leads.py and smtp-sink/), REWARM_BENCH_POSTGRES_URL (a server URL whose user may
# CREATE DATABASE; default postgres://postgres@127.0.0.1:5432/postgres), REWARM_BENCH_DIR,
# REWARM_BENCH_SINK_TARGET (where smtp-sink is built; default CARGO_TARGET_DIR),
# REWARM_BENCH_NO_BUILD (set: use the binaries already built), REWARM_BENCH_PROFILE (`dev` only
# to try the script quickly), REWARM_BENCH_WAVE_DEPTH (scheduler.wave_depth of the runs,
# default 16).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rewarm-target}"
TOOLS="${REWARM_BENCH_TOOLS:-$ROOT/../shared/tools}"
# Without TLS by default: the server is on this machine, where docs/postgres.md has operators
# use the socket or `sslmode=disable` (sqlx's default `prefer` negotiates TLS, which the send
# section measures in a row of its own).
PG_URL="${REWARM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
WORK="${REWARM_BENCH_DIR:-$(mktemp -d /var/tmp/rewarm-bench.XXXXXX)}"
SECTIONS="${REWARM_BENCH_SECTIONS:-send $(cd "$ROOT/bench/sections" && ls -- *.sh | sed 's/\.sh$//' | grep -vx send | tr '\n' ' ')}"
POOL=8
BATCH=500
# Sends per connection between two records (scheduler.wave_depth); the send section also
# runs its smallest size at the default, 1.
WAVE_DEPTH="${REWARM_BENCH_WAVE_DEPTH:-16}"
RAW_N=100000
# Imported at the reference date; the first email is due 1,000 days after the loss, so the
# enrolment pass sends nothing and the send pass (1,100 days on) finds everything due.
T_IMPORT="2026-12-03T12:00:00Z"
T_SEND="2029-12-07T12:00:00Z"

command -v sqlite3 >/dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)" >&2; exit 1; }
PROFILE="${REWARM_BENCH_PROFILE:-release}"
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
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

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

# The raw client into the same sink, same run (sections may measure it again next to a figure).
RAW_1=$(raw_rate 1 "$RAW_N")
RAW_8=$(raw_rate 8 "$RAW_N")
row "raw SMTP client (smtp-blast, ~2 KB, no pipelining), $(thousands "$RAW_N") messages" "—" "1 conn: $(thousands "$RAW_1") msg/s, 8 conns: $(thousands "$RAW_8") msg/s"

for section in $SECTIONS; do
  echo "# section $section" >&2
  # shellcheck disable=SC1090
  source "$ROOT/bench/sections/$section.sh"
done

echo
echo "rewarm scale benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| what | rewarm | reference, same run |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
