# Import, dry run, re-import, first enrolment, status, forecast (at the import date, and with
# every first email due), idle daemon and /metrics per size (issue 12, parts 4–7), sourced by bench/scale.sh after bench/lib.sh. The helpers that own those parts
# may split this file into their own sections.
#
#   REWARM_BENCH_SIZES      leads per size on SQLite (default "10000 100000 1000000"; the idle
#                           daemon and /metrics at the largest)
#   REWARM_BENCH_PG_SIZES   leads per size on PostgreSQL (default "10000 100000")
#   REWARM_BENCH_REIMPORT=0 skips the dry run and the unchanged re-import
SIZES="${REWARM_BENCH_SIZES:-10000 100000 1000000}"
PG_SIZES="${REWARM_BENCH_PG_SIZES-10000 100000}"

# One size on one backend: import, re-import, enrolment, status (and, when asked, idle CPU and
# /metrics).
run_size() { # run_size BACKEND N CSV IDLE
  local backend=$1 n=$2 csv=$3 idle=$4 dir="$WORK/$1-$2" url
  mkdir -p "$dir"
  if [ "$backend" = sqlite ]; then
    rm -f "$dir"/rewarm.db* # an earlier run's database (and its identity marker)
    url="sqlite://$dir/rewarm.db"
  else
    url=$(pg_url "rewarm_bench_$n")
  fi
  local http_port; http_port=$(free_port)
  config "$dir/rewarm.toml" "$url" "$http_port"
  local rw=("$REWARM" --config "$dir/rewarm.toml")
  "${rw[@]}" migrate >/dev/null

  timed "$dir/import" "${rw[@]}" --now "$T_IMPORT" leads import "$csv"
  row "$backend $n: import" "$(rate "$n" "$(field "$dir/import" 1)") leads/s, peak RSS $(( $(field "$dir/import" 2) / 1024 )) MiB" "sqlite3 .import: $SQLITE_IMPORT_RATE rows/s"
  if [ "${REWARM_BENCH_REIMPORT:-1}" = 1 ]; then
    timed "$dir/dryrun" "${rw[@]}" --now "$T_IMPORT" leads import --dry-run "$csv"
    row "$backend $n: dry run of the same file (every row unchanged)" "$(field "$dir/dryrun" 1) s, peak RSS $(( $(field "$dir/dryrun" 2) / 1024 )) MiB" "first import: $(field "$dir/import" 1) s"
    timed "$dir/reimport" "${rw[@]}" --now "$T_IMPORT" leads import "$csv"
    row "$backend $n: unchanged re-import" "$(field "$dir/reimport" 1) s" "first import: $(field "$dir/import" 1) s"
  fi
  timed "$dir/enrol" "${rw[@]}" --now "$T_IMPORT" run --once
  row "$backend $n: first enrolment pass" "$(field "$dir/enrol" 1) s" "≤ 10 s at 1M"
  timed "$dir/status" "${rw[@]}" --now "$T_IMPORT" status
  row "$backend $n: status" "$(field "$dir/status" 1) s" "≤ 0.3 s at 1M"
  if [ "$idle" = yes ]; then
    timed "$dir/forecast" "${rw[@]}" --now "$T_IMPORT" forecast --days 30
    timed "$dir/forecast-leads" "${rw[@]}" --now "$T_IMPORT" forecast --days 30 --leads --json
    row "$backend $n: forecast --days 30 (totals; --leads --json)" \
        "$(field "$dir/forecast" 1) s, peak RSS $(( $(field "$dir/forecast" 2) / 1024 )) MiB; $(field "$dir/forecast-leads" 1) s, $(( $(field "$dir/forecast-leads" 2) / 1024 )) MiB" \
        "≤ 2 s and ≤ 150 MiB at 1M"
    # The same 30 days once every first email is due (the send pass's moment): each one is
    # read and replayed, those outside their lead's send window held until it opens.
    timed "$dir/forecast-due" "${rw[@]}" --now "$T_SEND" forecast --days 30
    local due_emails
    due_emails=$("${rw[@]}" --now "$T_SEND" forecast --days 30 | tail -1 | cut -d' ' -f1)
    row "$backend $n: forecast --days 30 with every first email due ($(thousands "$due_emails") emails)" \
        "$(field "$dir/forecast-due" 1) s, peak RSS $(( $(field "$dir/forecast-due" 2) / 1024 )) MiB" \
        "≤ 2 s and ≤ 150 MiB at 1M"

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
  [ "$backend" = sqlite ] || psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS rewarm_bench_$n" >/dev/null
}

sqlite_import_rate() { # sqlite_import_rate N CSV: `sqlite3 .import` of CSV into a bare table
  rm -f "$WORK/bare-$1.db"
  timed "$WORK/sqlite-import-$1" sqlite3 "$WORK/bare-$1.db" ".import --csv $2 bare"
  SQLITE_IMPORT_RATE=$(rate "$1" "$(field "$WORK/sqlite-import-$1" 1)")
}

# The smaller sizes, then PostgreSQL, then the largest SQLite size (idle daemon and /metrics
# there).
largest=$(printf '%s\n' $SIZES | sort -n | tail -1)
for n in $SIZES; do
  [ "$n" = "$largest" ] && continue
  csv=$(leads_csv "$n"); sqlite_import_rate "$n" "$csv"; run_size sqlite "$n" "$csv" no
done
for n in $PG_SIZES; do
  csv=$(leads_csv "$n"); sqlite_import_rate "$n" "$csv"; run_size postgres "$n" "$csv" no
done
if [ -n "$largest" ]; then
  csv=$(leads_csv "$largest"); sqlite_import_rate "$largest" "$csv"; run_size sqlite "$largest" "$csv" yes
fi
