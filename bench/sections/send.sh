# The send pass (issue 12, parts 1–3), sourced by bench/scale.sh after bench/lib.sh.
#
# For each size (due deliveries) it seeds one SQLite database with the product itself
# (`leads import` of a gen_leads.py file of size × 10/7 leads — the 30 % `went_quiet` match no
# segment — then `run --once` at the import date, which enrols everything, nothing due yet),
# copies it to PostgreSQL with `db copy`, and times `run --once` 1,100 days later (everything
# due) on each database into smtp-sink, right after smtp-blast over 8 connections into the same
# sink: each row carries its own raw reference, measured under the same machine load.
# Then three daemons (`run --once`, three worker ids) on one PostgreSQL database.
#
#   REWARM_BENCH_SEND_SIZES   due deliveries per size (default "10000 100000 1000000")
#   REWARM_BENCH_SEND_PG_SIZES  the sizes run on PostgreSQL (default: the same; "" for none; a
#                             size only here runs on PostgreSQL alone)
#   REWARM_BENCH_SCALE_OUT    due deliveries for the 3-daemon figure on PostgreSQL (default
#                             100000; "" skips it)
#   REWARM_BENCH_SEND_RUNS    runs per pass, the median shown (default 5 under 100k due, else 1)
SEND_SIZES="${REWARM_BENCH_SEND_SIZES-10000 100000 1000000}"
SEND_PG_SIZES="${REWARM_BENCH_SEND_PG_SIZES-$SEND_SIZES}"
SCALE_OUT="${REWARM_BENCH_SCALE_OUT-100000}"
RAW_CHECK_N=50000

label() { python3 -c "n=$1; print(f'{n//1000000}M' if n>=1000000 and n%1000000==0 else f'{n//1000}k' if n%1000==0 else str(n))"; }

# `send_seed DUE`: a SQLite database (path printed) with DUE deliveries due at T_SEND, made once.
send_seed() {
  local due=$1 seed="$WORK/send-seed-$1.db"
  if [ ! -f "$seed" ]; then
    local n=$(( (due * 10 + 6) / 7 )) dir="$WORK/send-seed-$1" csv
    csv=$(leads_csv "$n")
    mkdir -p "$dir"
    rm -f "$dir"/seed.db* # a run stopped half-way (or the seed removed) leaves a stale identity marker
    config "$dir/rewarm.toml" "sqlite://$dir/seed.db" "$(free_port)"
    local rw=("$REWARM" --config "$dir/rewarm.toml")
    "${rw[@]}" migrate >/dev/null
    timed "$dir/import" "${rw[@]}" --now "$T_IMPORT" leads import "$csv"
    timed "$dir/enrol" "${rw[@]}" --now "$T_IMPORT" run --once
    echo "# seeded $due due from $n leads: import $(field "$dir/import" 1) s, enrolment $(field "$dir/enrol" 1) s" >&2
    sqlite3 "$dir/seed.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    mv "$dir/seed.db" "$seed"
  fi
  echo "$seed"
}

# `send_db BACKEND DUE NAME`: a fresh copy of the seed on BACKEND; prints its URL.
send_db() {
  local seed; seed=$(send_seed "$2")
  if [ "$1" = sqlite ]; then
    cp "$seed" "$WORK/$3.db"
    rm -f "$WORK/$3.db-wal" "$WORK/$3.db-shm" "$WORK/$3.db.rewarm-id" # an earlier run's copy is another database
    echo "sqlite://$WORK/$3.db"
  else
    local url; url=$(pg_url "$3")
    "$REWARM" --config "$WORK/send-seed-$2/rewarm.toml" db copy --from "sqlite://$seed" --to "$url" >/dev/null
    echo "$url"
  fi
}

declare -A SEND_RATE
# `send_pass BACKEND DUE [WAVE_DEPTH]`: `run --once` with everything due, timed, on a fresh copy
# of the seed each time; one row with the median run. Passes under 100k due last a second or
# two, within this machine's noise, so they run 5 times (REWARM_BENCH_SEND_RUNS overrides it for
# every size). With PG_TLS set, PostgreSQL is reached over TLS (`sslmode=require`): a row of its own.
send_pass() {
  local backend=$1 due=$2 depth=${3:-$WAVE_DEPTH} name="send_$1_$2" url dir shown=$1
  local runs=${REWARM_BENCH_SEND_RUNS:-$( [ "$due" -lt 100000 ] && echo 5 || echo 1 )}
  dir="$WORK/$name"; mkdir -p "$dir"
  local raw8 before after sent secs=() rss=0 i
  raw8=$(raw_rate 8 "$RAW_CHECK_N")
  for ((i = 0; i < runs; i++)); do
    url=$(send_db "$backend" "$due" "$name")
    if [ -n "${PG_TLS:-}" ]; then url="${url%%\?*}?sslmode=require"; shown="postgres over TLS"; fi
    WAVE_DEPTH=$depth config "$dir/rewarm.toml" "$url" "$(free_port)"
    sleep 0.5 # the sink writes its stats every 200 ms: earlier messages are counted first
    before=$(accepted)
    timed "$dir/send" "$REWARM" --config "$dir/rewarm.toml" --now "$T_SEND" run --once
    sleep 0.3
    after=$(accepted)
    sent=$((after - before)); secs+=("$(field "$dir/send" 1)")
    rss=$(( $(field "$dir/send" 2) > rss ? $(field "$dir/send" 2) : rss ))
    [ "$backend" = sqlite ] || psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $name" >/dev/null
  done
  local median runs_text r
  median=$(printf '%s\n' "${secs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  runs_text="$median s"
  [ "$runs" -gt 1 ] && runs_text="median of $runs: $median s, runs $(printf '%s\n' "${secs[@]}" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}') s"
  r=$(rate "$sent" "$median")
  [ "$depth" = "$WAVE_DEPTH" ] && [ -z "${PG_TLS:-}" ] && SEND_RATE[$backend-$due]=$r
  row "send pass, $shown, $(label "$due") due ($(thousands "$sent") sent, pool $POOL, batch $BATCH, wave depth $depth)" \
      "$r msg/s ($runs_text, peak RSS $(( rss / 1024 )) MiB)" \
      "raw 8 conns just before: $(thousands "$raw8") msg/s; rewarm = $(ratio "$r" "$raw8") × raw"
}

# Three daemons, three worker ids, one PostgreSQL database: the wall time until all are done.
scale_out() {
  local due=$1 name="send_scaleout_$1" url raw8 before after secs t0 t1 pids=()
  url=$(send_db postgres "$due" "$name")
  raw8=$(raw_rate 8 "$RAW_CHECK_N")
  sleep 0.5
  before=$(accepted)
  t0=$(date +%s.%N)
  for w in 1 2 3; do
    mkdir -p "$WORK/$name-$w"
    config "$WORK/$name-$w/rewarm.toml" "$url" "$(free_port)" "bench-$w"
    "$REWARM" --config "$WORK/$name-$w/rewarm.toml" --now "$T_SEND" run --once >/dev/null 2>"$WORK/$name-$w/err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$WORK/$name-"*/err >&2; return 1; }; done
  t1=$(date +%s.%N)
  sleep 0.3
  after=$(accepted)
  secs=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  local r; r=$(rate "$((after - before))" "$secs")
  local one="${SEND_RATE[postgres-$due]:-}"
  row "3 daemons on one PostgreSQL, $(label "$due") due ($(thousands "$((after - before))") sent)" \
      "$r msg/s ($secs s)$([ -n "$one" ] && echo "; $(ratio "$r" "$one") × one daemon")" \
      "raw 8 conns just before: $(thousands "$raw8") msg/s; $(nproc) cores"
  psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $name" >/dev/null
}

in_list() { local x=$1; shift; printf '%s\n' "$@" | grep -qx "$x"; } # in_list N LIST...
# Every size either database runs, smallest first (a PostgreSQL size needs no SQLite pass).
ALL_SIZES=$(printf '%s\n' $SEND_SIZES $SEND_PG_SIZES | sort -nu)
small=$(printf '%s\n' $SEND_SIZES | sort -n | head -1)
# The default wave depth (1: one delivery per connection between two records), for comparison.
if [ -n "$small" ] && [ "$WAVE_DEPTH" != 1 ]; then send_pass sqlite "$small" 1; fi
for due in $ALL_SIZES; do
  if in_list "$due" $SEND_SIZES; then send_pass sqlite "$due"; fi
  if in_list "$due" $SEND_PG_SIZES; then send_pass postgres "$due"; fi
done
# The same PostgreSQL pass over TLS, at its smallest size (docs/performance.md: what it costs).
pg_small=$(printf '%s\n' $SEND_PG_SIZES | sort -n | head -1)
if [ -n "$pg_small" ]; then PG_TLS=1 send_pass postgres "$pg_small"; fi
# The ratios the issue asks for, from the rows above: each database against its own smallest
# size, and PostgreSQL against SQLite at each size both ran.
for backend in sqlite postgres; do
  first=""; linear=""
  for due in $ALL_SIZES; do
    [ -n "${SEND_RATE[$backend-$due]:-}" ] || continue
    if [ -z "$first" ]; then first=$due; continue; fi
    linear+="$(label "$due"): $(ratio "${SEND_RATE[$backend-$due]}" "${SEND_RATE[$backend-$first]}") × the $(label "$first") rate, "
  done
  if [ -n "$linear" ]; then row "send pass linearity, $backend" "${linear%, }" "≥ 0.8"; fi
done
pg=""
for due in $ALL_SIZES; do
  [ -n "${SEND_RATE[postgres-$due]:-}" ] && [ -n "${SEND_RATE[sqlite-$due]:-}" ] || continue
  pg+="$(label "$due"): $(ratio "${SEND_RATE[postgres-$due]}" "${SEND_RATE[sqlite-$due]}"), "
done
if [ -n "$pg" ]; then row "PostgreSQL / SQLite, same pass" "${pg%, }" "≥ 0.8"; fi
if [ -n "$SCALE_OUT" ]; then
  [ -n "${SEND_RATE[postgres-$SCALE_OUT]:-}" ] || send_pass postgres "$SCALE_OUT"
  scale_out "$SCALE_OUT"
fi
