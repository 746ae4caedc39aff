#!/usr/bin/env bash
# Idempotent setup for `make bench` and `make test`: system packages (when root),
# uv, and the project's venv. Safe to run again; fast when nothing changed.
#   scripts/setup.sh          the platform's needs (RabbitMQ, Node.js, wrk, venv)
#   scripts/setup.sh --test   plus what the tests need (Chromium for the report test)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

apt_packages=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || apt_packages+=(rabbitmq-server)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs npm)
# wrk: the light load client of benchmarks/serving_warm_overhead.py (optional there)
command -v wrk >/dev/null 2>&1 || apt_packages+=(wrk)
if $want_test; then
  command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
fi

if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${apt_packages[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
    # the Debian package starts a system node we do not use: ours runs privately
    if [[ " ${apt_packages[*]} " == *" rabbitmq-server "* ]]; then
      (systemctl stop rabbitmq-server || service rabbitmq-server stop || true) >/dev/null 2>&1
    fi
  else
    echo "setup: missing ${apt_packages[*]}; install them (see README, 'Other systems')" >&2
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  python3 -m pip install -q uv 2>/dev/null || python3 -m pip install -q --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi

stamp=.venv/.kl-installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: creating .venv with uv" >&2
  [ -x .venv/bin/python ] || uv venv -q .venv --python "$(command -v python3.11 || command -v python3)"
  uv pip install -q --python .venv/bin/python -e '.[test]'
  touch "$stamp"
fi
