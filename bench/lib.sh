# Shared by bench/scale.sh and its sections (sourced, never run): the tools, the sink, timing,
# the configuration every run uses, and the rows of the final table.
#
# A section (bench/sections/NAME.sh) is sourced by scale.sh after this file; it may use
# everything below and adds its figures with `row WHAT REWARM REFERENCE`.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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
ratio() { python3 -c "print(f'{float(\"$1\".replace(\",\",\"\"))/max(float(\"$2\".replace(\",\",\"\")),1e-9):.2f}')"; }
thousands() { python3 -c "print(f'{int($1):,}')"; }
accepted() { sed -n 's/.*accepted=\([0-9]*\).*/\1/p' "$WORK/sink.stats"; }

# `raw_rate CONNS N`: smtp-blast's rate (msg/s) into the sink, now.
raw_rate() { "$BLAST" --to "127.0.0.1:$SINK_PORT" --n "$2" --conns "$1" | sed -n 's/.*rate=\([0-9]*\).*/\1/p'; }

# `leads_csv N`: the lead file of N leads (seed 7, 20 zones, 30 % matching no segment), made once.
leads_csv() {
  local csv="$WORK/leads-$1.csv"
  [ -f "$csv" ] || python3 "$TOOLS/gen_leads.py" "$1" "$csv" --seed 7 >/dev/null
  echo "$csv"
}

# `pg_url NAME`: a fresh PostgreSQL database NAME on the bench server (dropped first).
pg_url() {
  psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  # The query (`?sslmode=disable`) is kept: only the database's name changes.
  local base=${PG_URL%%\?*}
  echo "${base%/*}/$1${PG_URL#"$base"}"
}

config() { # config FILE DATABASE_URL HTTP_PORT [WORKER_ID]
  cat >"$1" <<CONF
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
wave_depth = ${WAVE_DEPTH:-1}
tick = "5s"
CONF
  [ -n "${4:-}" ] && printf 'worker_id = "%s"\n' "$4" >>"$1"
  printf '[http]\nlisten = "127.0.0.1:%s"\n' "$3" >>"$1"
  for reason in no_budget timing chose_competitor no_decision bad_fit; do
    printf '[[segments]]\nname = "%s"\nlost_reason = "%s"\ncampaign = "checkin"\n' "$reason" "$reason" >>"$1"
  done
  cat >>"$1" <<CONF
[campaigns.checkin]
first_after = "1000d"
every = "30d"
send_window = { days = "Mon-Sun", hours = "00:00-24:00" }
CONF
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")"); echo "${ROWS[-1]}" | tee -a "$WORK/rows.md" >&2; }
