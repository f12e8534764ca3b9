#!/usr/bin/env bash
# Installs Synapse (PyPI `matrix-synapse`, SQLite) in a virtualenv and starts it on
# loopback for `synapse-bench`, configured for a load test: open registration without
# verification, rate limits out of the way, no federation, no presence, SQLite.
#
#   bash bench/synapse/setup.sh            # → http://127.0.0.1:8008, data in target/synapse
#   bash bench/synapse/setup.sh stop
#
# SYNAPSE_DIR (default target/synapse) holds the virtualenv, config, database and log.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${SYNAPSE_DIR:-$PWD/target/synapse}
version=${SYNAPSE_VERSION:-1.163.2}
port=${SYNAPSE_PORT:-8008}

if [ "${1:-}" = "stop" ]; then
  if [ -f "$dir/homeserver.pid" ]; then
    kill "$(cat "$dir/homeserver.pid")" 2>/dev/null || true
    rm -f "$dir/homeserver.pid"
  fi
  exit 0
fi

mkdir -p "$dir"
if [ ! -x "$dir/venv/bin/python" ]; then
  python3 -m venv "$dir/venv"
fi
if ! "$dir/venv/bin/python" -c "import synapse" 2>/dev/null; then
  "$dir/venv/bin/pip" install -q "matrix-synapse==$version"
fi

if [ ! -f "$dir/generated.yaml" ]; then
  "$dir/venv/bin/python" -m synapse.app.homeserver \
    --server-name bench.local --config-path "$dir/generated.yaml" \
    --data-directory "$dir" --generate-config --report-stats=no >/dev/null
fi
# The generated config, adjusted: one loopback listener, SQLite, load-test limits.
"$dir/venv/bin/python" - "$dir" "$port" <<'PY'
import sys, yaml
d, port = sys.argv[1], int(sys.argv[2])
c = yaml.safe_load(open(f"{d}/generated.yaml"))
big = {"per_second": 100000, "burst_count": 100000}
c.update({
    "listeners": [{"port": port, "tls": False, "type": "http", "x_forwarded": False,
                   "bind_addresses": ["127.0.0.1"],
                   "resources": [{"names": ["client"], "compress": False}]}],
    "database": {"name": "sqlite3", "args": {"database": f"{d}/homeserver.db"}},
    "pid_file": f"{d}/homeserver.pid",
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "report_stats": False,
    "trusted_key_servers": [],
    "suppress_key_server_warning": True,
    "federation_domain_whitelist": [],
    "presence": {"enabled": False},
    "rc_message": big,
    "rc_registration": big,
    "rc_login": {"address": big, "account": big, "failed_attempts": big},
    "rc_joins": {"local": big, "remote": big},
    "rc_joins_per_room": big,
    "rc_invites": {"per_room": big, "per_user": big, "per_issuer": big},
    "rc_3pid_validation": big,
})
yaml.safe_dump(c, open(f"{d}/homeserver.yaml", "w"))
# Quiet log: warnings only.
log = c.get("log_config")
if log:
    lc = yaml.safe_load(open(log))
    lc.setdefault("root", {})["level"] = "WARNING"
    for logger in lc.get("loggers", {}).values():
        logger["level"] = "WARNING"
    # The generated file handler writes to a relative path, that is wherever Synapse was
    # started from (it once left a homeserver.log in the repository): keep it in SYNAPSE_DIR.
    for handler in lc.get("handlers", {}).values():
        if "filename" in handler:
            handler["filename"] = f"{d}/homeserver.log"
    yaml.safe_dump(lc, open(log, "w"))
PY

if [ -f "$dir/homeserver.pid" ] && kill -0 "$(cat "$dir/homeserver.pid")" 2>/dev/null; then
  echo "synapse already running on http://127.0.0.1:$port"
  exit 0
fi
"$dir/venv/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --daemonize
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/_matrix/client/versions" >/dev/null 2>&1; then
    echo "synapse $version on http://127.0.0.1:$port (SQLite, data in $dir)"
    exit 0
  fi
  sleep 0.5
done
echo "error: synapse did not start; see $dir/homeserver.log" >&2
exit 1
