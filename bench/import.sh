#!/usr/bin/env bash
# The import benchmark (issue 12, part 4): one run, every figure next to its reference from
# the same run.
#
#   bench/import.sh                                   # 100k and 1M leads; PostgreSQL at 100k
#   REWARM_BENCH_SIZES="100000" bench/import.sh       # a quicker look
#
# For each size it generates a lead file with ../shared/tools/gen_leads.py (fixed seed 7) and
# the same leads as JSON lines, then, with the release binary, prints:
#   - `sqlite3 .import` of the CSV into a bare table (the reference),
#   - `leads import` of the CSV into a new SQLite database: rate and peak RSS,
#   - the unchanged re-import of the same file (time next to the first import's),
#   - `leads import` of the JSON lines into another new database,
#   - POST /api/leads in batches of 5,000 (and again, unchanged) to a daemon on SQLite,
#   - and, at the PostgreSQL sizes, `leads import` and its re-import on PostgreSQL next to
#     psql's `\copy` of the CSV into a bare table.
# Environment: CARGO_TARGET_DIR (default /var/tmp/rewarm-target), REWARM_BENCH_TOOLS (the folder
# with gen_leads.py), REWARM_BENCH_POSTGRES_URL (a server URL whose user may CREATE DATABASE;
# default postgres://postgres@127.0.0.1:5432/postgres), REWARM_BENCH_PG_SIZES (default 100000;
# empty: none), REWARM_BENCH_DIR, REWARM_BENCH_NO_BUILD (set: use the binary already built).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rewarm-target}"
TOOLS="${REWARM_BENCH_TOOLS:-$ROOT/../shared/tools}"
SIZES="${REWARM_BENCH_SIZES:-100000 1000000}"
PG_SIZES="${REWARM_BENCH_PG_SIZES-100000}"
PG_URL="${REWARM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
WORK="${REWARM_BENCH_DIR:-$(mktemp -d /var/tmp/rewarm-import.XXXXXX)}"
T_IMPORT="2026-12-03T12:00:00Z"

command -v sqlite3 >/dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)" >&2; exit 1; }
if [ -z "${REWARM_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --bin rewarm >&2
fi
REWARM="$CARGO_TARGET_DIR/release/rewarm"
mkdir -p "$WORK"
echo "# work folder: $WORK" >&2
DAEMON_PID=""
cleanup() { [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true; }
trap cleanup EXIT

# `timed OUT CMD…`: runs CMD, writes "seconds max_rss_kib" to OUT. Exit status 3 (`leads
# import`: some rows rejected — gen_leads.py writes a few loss times inside DST gaps) is fine.
timed() {
  local out=$1 rc=0; shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >"$out.out" 2>"$out.err" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || { cat "$out.err" >&2; return 1; }
  tail -1 "$out" >"$out.tmp" && mv "$out.tmp" "$out"
}
field() { cut -d' ' -f"$2" "$1"; }
rate() { python3 -c "import sys; print(f'{$1/max($2,1e-9):,.0f}')"; }
ratio() { python3 -c "print(f'{$1/max($2,1e-9):.2f}')"; }
mib() { echo $(( $(field "$1" 2) / 1024 )); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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
[scheduler]
tick = "1h"
[http]
listen = "127.0.0.1:$3"
api_token_env = "REWARM_BENCH_API_TOKEN"
[[segments]]
name = "all"
campaign = "checkin"
[campaigns.checkin]
first_after = "1000d"
every = "30d"
EOF
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")"); echo "${ROWS[-1]}" | tee -a "$WORK/rows.md" >&2; }

# A new database for one figure: prints the `rewarm` command line to use.
fresh() { # fresh NAME BACKEND → dir
  local dir="$WORK/$1" url
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$2" = sqlite ]; then
    url="sqlite://$dir/rewarm.db"
  else
    local db="rewarm_import_$1"; db=${db//-/_}
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    base=${PG_URL%%\?*}; url="${base%/*}/$db${PG_URL#"$base"}"
  fi
  config "$dir/rewarm.toml" "$url" "$(free_port)"
  "$REWARM" --config "$dir/rewarm.toml" migrate >/dev/null
  echo "$dir"
}

to_jsonl() { # to_jsonl CSV JSONL: the same leads, one JSON object a line
  python3 - "$1" "$2" <<'EOF'
import csv, json, sys
with open(sys.argv[1], newline="") as src, open(sys.argv[2], "w") as out:
    for row in csv.DictReader(src):
        out.write(json.dumps({k: v for k, v in row.items() if v}, ensure_ascii=False) + "\n")
EOF
}

# POST /api/leads: the JSONL's leads in batches of 5,000 (bodies built before the clock
# starts), twice; prints "seconds_first seconds_again".
api_post() { # api_post JSONL PORT
  python3 - "$1" "$2" <<'EOF'
import http.client, json, os, sys, time
leads = [json.loads(l) for l in open(sys.argv[1])]
bodies = [json.dumps(leads[i:i + 5000]).encode() for i in range(0, len(leads), 5000)]
headers = {"Authorization": "Bearer " + os.environ["REWARM_BENCH_API_TOKEN"], "Content-Type": "application/json"}
def run():
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]), timeout=600)
    t = time.monotonic()
    for b in bodies:
        c.request("POST", "/api/leads", body=b, headers=headers)
        r = c.getresponse(); r.read()
        if r.status != 200:
            sys.exit(f"POST /api/leads: {r.status}")
    return time.monotonic() - t
print(f"{run():.2f} {run():.2f}")
EOF
}

export REWARM_BENCH_API_TOKEN=bench-token
one_size() { # one_size N
  local n=$1 csv="$WORK/leads-$1.csv" jsonl="$WORK/leads-$1.jsonl" dir
  [ -f "$csv" ] || python3 "$TOOLS/gen_leads.py" "$n" "$csv" --seed 7 >/dev/null
  [ -f "$jsonl" ] || to_jsonl "$csv" "$jsonl"
  rm -f "$WORK/bare-$n.db"
  timed "$WORK/sqlite3-$n" sqlite3 "$WORK/bare-$n.db" ".import --csv $csv bare"
  local ref; ref=$(rate "$n" "$(field "$WORK/sqlite3-$n" 1)")

  dir=$(fresh "csv-$n" sqlite)
  timed "$dir/import" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$csv"
  local r; r=$(rate "$n" "$(field "$dir/import" 1)")
  row "SQLite $n: import CSV" "$r leads/s ($(field "$dir/import" 1) s), peak RSS $(mib "$dir/import") MiB" \
      "sqlite3 .import: $ref rows/s ($(field "$WORK/sqlite3-$n" 1) s): ratio $(ratio "$n/$(field "$dir/import" 1)" "$n/$(field "$WORK/sqlite3-$n" 1)")"
  timed "$dir/reimport" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$csv"
  row "SQLite $n: unchanged re-import" "$(field "$dir/reimport" 1) s, peak RSS $(mib "$dir/reimport") MiB" \
      "first import $(field "$dir/import" 1) s: $(ratio "$(field "$dir/import" 1)" "$(field "$dir/reimport" 1)")× faster"

  dir=$(fresh "jsonl-$n" sqlite)
  timed "$dir/import" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$jsonl"
  row "SQLite $n: import JSONL" "$(rate "$n" "$(field "$dir/import" 1)") leads/s ($(field "$dir/import" 1) s), peak RSS $(mib "$dir/import") MiB" "sqlite3 .import (CSV): $ref rows/s"
  timed "$dir/reimport" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$jsonl"
  row "SQLite $n: unchanged JSONL re-import" "$(field "$dir/reimport" 1) s" \
      "first import $(field "$dir/import" 1) s: $(ratio "$(field "$dir/import" 1)" "$(field "$dir/reimport" 1)")× faster"

  if [ "$n" -le 100000 ]; then
    dir=$(fresh "api-$n" sqlite)
    local port; port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$dir/rewarm.toml")
    "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" run >"$dir/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    local secs; secs=$(api_post "$jsonl" "$port")
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
    row "SQLite $n: POST /api/leads, 5,000 a request" "$(rate "$n" "${secs% *}") leads/s (${secs% *} s)" "sqlite3 .import: $ref rows/s"
    row "SQLite $n: POST /api/leads again, unchanged" "${secs#* } s" "first: ${secs% *} s: $(ratio "${secs% *}" "${secs#* }")× faster"
  fi
}

pg_size() { # pg_size N
  local n=$1 csv="$WORK/leads-$1.csv" dir
  [ -f "$csv" ] || python3 "$TOOLS/gen_leads.py" "$n" "$csv" --seed 7 >/dev/null
  psql -q "$PG_URL" -c "DROP TABLE IF EXISTS rewarm_bench_bare" \
    -c "CREATE TABLE rewarm_bench_bare (email text, first_name text, last_name text, company text, title text, owner_email text, owner_name text, lost_reason text, lost_at text, timezone text, tags text)" >/dev/null
  timed "$WORK/copy-$n" psql -q "$PG_URL" -c "\\copy rewarm_bench_bare FROM '$csv' CSV HEADER"
  psql -q "$PG_URL" -c "DROP TABLE rewarm_bench_bare" >/dev/null
  local ref; ref=$(rate "$n" "$(field "$WORK/copy-$n" 1)")
  dir=$(fresh "pg-$n" postgres)
  timed "$dir/import" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$csv"
  row "PostgreSQL $n: import CSV" "$(rate "$n" "$(field "$dir/import" 1)") leads/s ($(field "$dir/import" 1) s), peak RSS $(mib "$dir/import") MiB" \
      "psql \\copy: $ref rows/s ($(field "$WORK/copy-$n" 1) s)"
  timed "$dir/reimport" "$REWARM" --config "$dir/rewarm.toml" --now "$T_IMPORT" leads import "$csv"
  row "PostgreSQL $n: unchanged re-import" "$(field "$dir/reimport" 1) s" \
      "first import $(field "$dir/import" 1) s: $(ratio "$(field "$dir/import" 1)" "$(field "$dir/reimport" 1)")× faster"
}

for n in $SIZES; do one_size "$n"; done
for n in $PG_SIZES; do pg_size "$n"; done

echo
echo "rewarm import benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | rewarm | reference, same run |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
