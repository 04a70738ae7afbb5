#!/usr/bin/env bash
# Installs Postfix's smtp-sink/smtp-source if needed (no mail system is configured), then
# runs the end-to-end send-rate benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/sbin/smtp-sink ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postfix
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/rewarm-target}"
cargo bench --bench send_rate
