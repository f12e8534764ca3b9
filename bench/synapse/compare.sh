#!/usr/bin/env bash
# Ledgerline's relay and Synapse under the same workload, one after the other in one run
# on this machine: an encrypted message into a 10-member room, delivered to every member
# (relay: WebSocket push; Synapse: /sync). Prints both tables and the ratio of saturated
# accepted messages per second (issue "Proof harness": target ≥ 20×).
#
#   bash bench/synapse/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash bench/synapse/setup.sh
cargo build --release -q -p ledgerline-bench --bin relay-bench --bin synapse-bench
relay=$(target/release/relay-bench --messages "${RELAY_MESSAGES:-3000}")
synapse=$(target/release/synapse-bench --messages "${SYNAPSE_MESSAGES:-1000}")
printf '%s\n\n%s\n\n' "$relay" "$synapse"
# Column 4 of relay-bench's and column 3 of synapse-bench's saturated row: accepted msg/s.
r=$(printf '%s\n' "$relay" | awk -F'|' '/^\| saturated/ { gsub(/ /, "", $4); print $4; exit }')
s=$(printf '%s\n' "$synapse" | awk -F'|' '/^\| saturated/ { gsub(/ /, "", $3); print $3; exit }')
awk -v r="$r" -v s="$s" 'BEGIN { printf "ratio, saturated accepted msg/s (relay / Synapse): %.1fx (%s / %s)\n", r / s, r, s }'
# Stop the homeserver this script started (KEEP_SYNAPSE=1 leaves it running).
if [ "${KEEP_SYNAPSE:-0}" != "1" ]; then
  bash bench/synapse/setup.sh stop
fi
