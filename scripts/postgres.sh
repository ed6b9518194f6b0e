#!/usr/bin/env bash
# A throwaway PostgreSQL for the arena's `orders` service (`orders -db "$(scripts/postgres.sh start)"`).
#
#   scripts/postgres.sh start [PORT]   install Debian's postgresql if missing, create a cluster in a
#                                      temp dir (owned by the postgres user), start it on
#                                      127.0.0.1:PORT (default: a free port), create database
#                                      `arena`; prints the DSN on stdout, the data dir on stderr
#   scripts/postgres.sh stop DATADIR   stop that cluster and delete its directory
#
# Trust authentication on loopback only: it is a benchmark fixture, not a server.
set -euo pipefail

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  if ! bin="$(find_bin)"; then
    echo "postgres: installing Debian's postgresql (apt-get)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
      apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    }
    bin="$(find_bin)" || { echo "postgres: no pg_ctl after installing postgresql" >&2; exit 1; }
  fi
  # A free port below the kernel's ephemeral range: PostgreSQL binds it seconds later (initdb
  # first), and an ephemeral one could meanwhile become some outgoing connection's source port.
  port="${2:-$(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
start = random.randrange(10000, low)
for i in range(low - 10000):
    p = 10000 + (start - 10000 + i) % (low - 10000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
)}"
  dir="$(mktemp -d /tmp/gotap-pg.XXXXXX)"
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  # Socket in the cluster's own dir: no dependency on /var/run/postgresql.
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c max_connections=200" start >&2 || {
    cat "$dir/server.log" >&2; exit 1; }
  as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres arena
  echo "postgres: data dir $dir (stop with: $0 stop $dir)" >&2
  echo "postgres://postgres@127.0.0.1:$port/arena?sslmode=disable"
  ;;
stop)
  [ $# -eq 2 ] && [ -d "$2/data" ] || { echo "usage: $0 stop DATADIR (the directory 'start' printed)" >&2; exit 2; }
  bin="$(find_bin)"
  as_postgres "$bin/pg_ctl" -D "$2/data" -m fast -w stop >&2 || true
  rm -rf "$2"
  ;;
*)
  echo "usage: $0 start [PORT] | $0 stop DATADIR" >&2
  exit 2
  ;;
esac
