#!/usr/bin/env bash
# Local Redis, Redis Cluster and MariaDB for ifriend's tests, bound to 127.0.0.1.
#
#   scripts/servers.sh start          install (apt, as root) if missing, start, create test db/user
#   scripts/servers.sh stop [--purge] shut them down; --purge also removes the state folder
#   scripts/servers.sh status         say what is running
#   scripts/servers.sh env            print the exports tests read (eval "$(scripts/servers.sh env)")
#
# Everything (data, sockets, pid files, logs, rendered configs) lives in .servers/ at the repo
# root; the config templates are config/servers/. Ports: IFRIEND_TEST_REDIS_PORT (6379),
# IFRIEND_TEST_MYSQL_PORT (3306) and IFRIEND_TEST_CLUSTER_PORT (7000: the cluster's 3 masters
# and 3 replicas take 7000..7005). No systemd/service is used: servers run as plain processes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.servers"
TEMPLATES="$ROOT/config/servers"
REDIS_PORT="${IFRIEND_TEST_REDIS_PORT:-6379}"
MYSQL_PORT="${IFRIEND_TEST_MYSQL_PORT:-3306}"
CLUSTER_PORT="${IFRIEND_TEST_CLUSTER_PORT:-7000}"
CLUSTER_NODES=6  # 3 masters, each with one replica
REDIS_DIR="$STATE/redis"
CLUSTER_DIR="$STATE/cluster"
MYSQL_DIR="$STATE/mariadb"
MYSQL_CNF="$MYSQL_DIR/my.cnf"
TIMEOUT="${IFRIEND_SERVERS_TIMEOUT:-60}"
DB_NAME=ifriend_test
DB_USER=ifriend
DB_PASSWORD=ifriend
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'servers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- installation -----------------------------------------------------------------------------

missing_binaries() {
  local bin
  for bin in redis-server redis-cli mariadbd mariadb-install-db mariadb mariadb-admin; do
    command -v "$bin" >/dev/null || echo "$bin"
  done
}

install_packages() {
  local missing
  missing="$(missing_binaries)"
  [[ -z "$missing" ]] && return 0
  [[ "$EUID" -eq 0 ]] || die "missing $(echo $missing); run as root to apt-get install them, or install redis-server mariadb-server mariadb-client"
  log "installing redis-server mariadb-server mariadb-client (missing: $(echo $missing))"
  # Keep package scripts from starting the system's own services on our ports.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
  local rc=0
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" update && \
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends \
      redis-server mariadb-server mariadb-client || rc=$?
  [[ -n "$added_policy" ]] && rm -f "$policy"
  [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
  missing="$(missing_binaries)"
  [[ -z "$missing" ]] || die "still missing after install: $(echo $missing)"
}

# --- processes and ports ----------------------------------------------------------------------

# A live (not zombie) process whose pid is in file $1 and whose command name is $2.
pid_of() {
  local file="$1" name="$2" pid
  [[ -s "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == "$name"* ]] || return 1
  echo "$pid"
}

alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]
}

port_in_use() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_gone() {
  local pid="$1" i
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# Start "$@" detached in its own session (survives the calling shell, make and CI steps).
launch() {
  local logfile="$1"; shift
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  echo $!
}

# Poll command "$@" until it succeeds, while pid $2 lives; on failure show the log $1.
wait_ready() {
  local logfile="$1" pid="$2" i; shift 2
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$pid" || { log "server exited during start; last log lines:"; tail -n 25 "$logfile" >&2; return 1; }
    sleep 0.1
  done
  log "server did not answer within ${TIMEOUT}s; last log lines:"
  tail -n 25 "$logfile" >&2
  return 1
}

# Copy template $1 to $2, filling @STATE@ and @PORT@.
render() {
  local text
  text="$(<"$1")"
  text="${text//@STATE@/$3}"
  text="${text//@PORT@/$4}"
  printf '%s\n' "$text" >"$2"
}

ensure_port_free() {
  local what="$1" port="$2" var="$3"
  port_in_use "$port" && die "port $port on 127.0.0.1 is taken by something that is not our $what (see: ss -ltnp 'sport = :$port'); stop it or set $var"
  return 0
}

# --- redis ------------------------------------------------------------------------------------

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_pid() { pid_of "$REDIS_DIR/redis.pid" redis-server; }

# Our redis answers on our port: INFO's process_id is the pid in our pid file.
redis_ours() {
  local pid
  pid="$(redis_pid)" || return 1
  [[ "$(redis_cli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" == "$pid" ]]
}

start_redis() {
  local pid
  if pid="$(redis_pid)"; then
    redis_ours || die "our redis-server (pid $pid) runs but does not answer on port $REDIS_PORT; run '$0 stop' first"
    log "redis already running (pid $pid, port $REDIS_PORT)"
    return 0
  fi
  ensure_port_free redis-server "$REDIS_PORT" IFRIEND_TEST_REDIS_PORT
  mkdir -p "$REDIS_DIR/data"
  rm -f "$REDIS_DIR/redis.pid"
  render "$TEMPLATES/redis.conf" "$REDIS_DIR/redis.conf" "$REDIS_DIR" "$REDIS_PORT"
  pid="$(launch "$REDIS_DIR/redis.log" redis-server "$REDIS_DIR/redis.conf")"
  wait_ready "$REDIS_DIR/redis.log" "$pid" redis_ours || die "redis-server did not start"
  log "redis started (pid $pid, port $REDIS_PORT)"
}

stop_redis() {
  local pid
  pid="$(redis_pid)" || { log "redis not running"; rm -f "$REDIS_DIR/redis.pid"; return 0; }
  if redis_ours; then redis_cli shutdown nosave >/dev/null 2>&1 || true; else kill -TERM "$pid"; fi
  wait_gone "$pid" || die "redis-server (pid $pid) did not stop"
  rm -f "$REDIS_DIR/redis.pid"
  log "redis stopped"
}

# --- redis cluster ----------------------------------------------------------------------------

cluster_ports() { seq "$CLUSTER_PORT" $((CLUSTER_PORT + CLUSTER_NODES - 1)); }
node_cli() { local port="$1"; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
node_pid() { pid_of "$CLUSTER_DIR/$1/redis.pid" redis-server; }

node_ours() {
  local pid
  pid="$(node_pid "$1")" || return 1
  [[ "$(node_cli "$1" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" == "$pid" ]]
}

start_node() {
  local port="$1" dir="$CLUSTER_DIR/$1" pid
  ensure_port_free "redis cluster node" "$port" IFRIEND_TEST_CLUSTER_PORT
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"
  render "$TEMPLATES/redis-cluster.conf" "$dir/redis.conf" "$dir" "$port"
  pid="$(launch "$dir/redis.log" redis-server "$dir/redis.conf")"
  wait_ready "$dir/redis.log" "$pid" node_ours "$port" || die "redis cluster node on port $port did not start"
}

# Every node says cluster_state:ok with all 16384 slots served and all nodes known; 3 masters
# without failure flags, each with a replica whose link to it is up.
cluster_ok() {
  local port info nodes
  for port in $(cluster_ports); do
    info="$(node_cli "$port" cluster info 2>/dev/null | tr -d '\r')" || return 1
    grep -qx 'cluster_state:ok' <<<"$info" || return 1
    grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
    grep -qx "cluster_known_nodes:$CLUSTER_NODES" <<<"$info" || return 1
  done
  nodes="$(node_cli "$CLUSTER_PORT" cluster nodes 2>/dev/null)" || return 1
  # fields: id address flags master ...; flags like "myself,master", "slave", "master,fail?"
  [[ "$(awk '$3 ~ /master/' <<<"$nodes" | wc -l)" -eq $((CLUSTER_NODES / 2)) ]] || return 1
  [[ -z "$(awk '$3 ~ /fail|noaddr|handshake/' <<<"$nodes")" ]] || return 1
  for port in $(cluster_ports); do
    info="$(node_cli "$port" info replication 2>/dev/null | tr -d '\r')" || return 1
    if grep -qx 'role:slave' <<<"$info"; then grep -qx 'master_link_status:up' <<<"$info" || return 1; fi
  done
  return 0
}

wait_cluster_ok() {
  local i
  for ((i = 0; i < TIMEOUT * 5; i++)); do
    cluster_ok && return 0
    sleep 0.2
  done
  return 1
}

start_cluster() {
  local port running=() missing=()
  for port in $(cluster_ports); do
    if node_pid "$port" >/dev/null; then
      node_ours "$port" || die "our redis cluster node (pid $(node_pid "$port")) does not answer on port $port; run '$0 stop' first"
      running+=("$port")
    else
      missing+=("$port")
    fi
  done
  if ((${#running[@]} == 0)); then
    rm -rf "$CLUSTER_DIR"
    for port in "${missing[@]}"; do start_node "$port"; done
    local addresses=()
    for port in $(cluster_ports); do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$CLUSTER_DIR/create.log" 2>&1 || { tail -n 25 "$CLUSTER_DIR/create.log" >&2; die "redis-cli --cluster create failed (see $CLUSTER_DIR/create.log)"; }
  else
    # Nodes that died rejoin from their nodes.conf (their data is gone: no persistence).
    for port in "${missing[@]}"; do start_node "$port"; done
  fi
  wait_cluster_ok || {
    node_cli "$CLUSTER_PORT" cluster nodes >&2 || true
    die "the redis cluster on ports $CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1)) is not ok (state, slots, replicas) after ${TIMEOUT}s; run '$0 stop' and start again"
  }
  log "redis cluster ready (127.0.0.1:$CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1)), 3 masters + 3 replicas)"
}

stop_cluster() {
  local port pid pids=()
  for port in $(cluster_ports); do
    pid="$(node_pid "$port")" || continue
    kill -CONT "$pid" 2>/dev/null || true
    if node_ours "$port"; then node_cli "$port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid"; else kill -TERM "$pid"; fi
    pids+=("$pid")
  done
  for pid in "${pids[@]}"; do wait_gone "$pid" || die "redis cluster node (pid $pid) did not stop"; done
  # The cluster's membership is as ephemeral as its data: the next start creates it anew.
  rm -rf "$CLUSTER_DIR"
  ((${#pids[@]})) && log "redis cluster stopped" || log "redis cluster not running"
}

# --- mariadb ----------------------------------------------------------------------------------

mysql_pid() { pid_of "$MYSQL_DIR/mariadb.pid" mariadbd; }
# Root is reached only through our own socket, so these always talk to our server.
mysql_admin() { mariadb-admin --defaults-file="$MYSQL_CNF" -uroot "$@"; }
mysql_root() { mariadb --defaults-file="$MYSQL_CNF" -uroot "$@"; }
mysql_ready() { mysql_admin ping && mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" ping; }
run_as_root_opt() { [[ "$EUID" -eq 0 ]] && echo --user=root || true; }

init_mariadb() {
  [[ -e "$MYSQL_DIR/initialized" ]] && return 0
  log "initializing MariaDB data directory"
  rm -rf "$MYSQL_DIR/data"
  mkdir -p "$MYSQL_DIR/data"
  local opts
  opts="$(run_as_root_opt)"
  mariadb-install-db --defaults-file="$MYSQL_CNF" $opts \
    --auth-root-authentication-method=normal --skip-test-db \
    >>"$MYSQL_DIR/install.log" 2>&1 || { tail -n 20 "$MYSQL_DIR/mariadb.log" >&2; die "mariadb-install-db failed (see $MYSQL_DIR/install.log)"; }
  touch "$MYSQL_DIR/initialized"
}

start_mariadb() {
  local pid
  if pid="$(mysql_pid)"; then
    wait_ready "$MYSQL_DIR/mariadb.log" "$pid" mysql_admin ping || die "our mariadbd (pid $pid) does not answer"
    [[ "$(mysql_root -N -e 'select @@port')" == "$MYSQL_PORT" ]] || die "our mariadbd (pid $pid) does not listen on port $MYSQL_PORT; run '$0 stop' first"
    log "mariadb already running (pid $pid, port $MYSQL_PORT)"
    return 0
  fi
  ensure_port_free mariadbd "$MYSQL_PORT" IFRIEND_TEST_MYSQL_PORT
  local socket="$MYSQL_DIR/mariadb.sock"
  (( ${#socket} < 100 )) || die "socket path too long for a Unix socket (${#socket} chars): $socket; clone to a shorter path"
  mkdir -p "$MYSQL_DIR"
  rm -f "$MYSQL_DIR/mariadb.pid" "$socket"
  render "$TEMPLATES/mariadb.cnf" "$MYSQL_CNF" "$MYSQL_DIR" "$MYSQL_PORT"
  init_mariadb
  pid="$(launch "$MYSQL_DIR/mariadb.log" mariadbd --defaults-file="$MYSQL_CNF" $(run_as_root_opt))"
  wait_ready "$MYSQL_DIR/mariadb.log" "$pid" mysql_ready || die "mariadbd did not start"
  log "mariadb started (pid $pid, port $MYSQL_PORT)"
}

# Test database and user; per-worker databases ifriend_test_* may be created and dropped.
setup_mariadb() {
  local user
  {
    echo "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
    for user in "'$DB_USER'@'127.0.0.1'" "'$DB_USER'@'localhost'"; do
      echo "CREATE USER IF NOT EXISTS $user IDENTIFIED BY '$DB_PASSWORD';"
      echo "ALTER USER $user IDENTIFIED BY '$DB_PASSWORD';"
      echo "GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO $user;"
      echo "GRANT ALL PRIVILEGES ON \`${DB_NAME//_/\\_}\\_%\`.* TO $user;"
    done
  } | mysql_root || die "could not create the test database and user"
}

stop_mariadb() {
  local pid
  pid="$(mysql_pid)" || { log "mariadb not running"; rm -f "$MYSQL_DIR/mariadb.pid"; return 0; }
  mysql_admin shutdown >/dev/null 2>&1 || kill -TERM "$pid"
  wait_gone "$pid" || die "mariadbd (pid $pid) did not stop"
  log "mariadb stopped"
}

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
  install_packages
  mkdir -p "$STATE"
  start_redis
  start_cluster
  start_mariadb
  setup_mariadb
  log "ready; the test environment is:"
  cmd_env >&2
}

cmd_stop() {
  stop_redis
  stop_cluster
  stop_mariadb
  if [[ "${1:-}" == --purge ]]; then
    rm -rf "$STATE"
    log "removed $STATE"
  fi
}

cmd_status() {
  local pid rc=0
  if pid="$(redis_pid)" && redis_ours; then echo "redis:   running (pid $pid, 127.0.0.1:$REDIS_PORT)"
  else echo "redis:   stopped"; rc=1; fi
  if cluster_ok; then echo "cluster: running (127.0.0.1:$CLUSTER_PORT..$((CLUSTER_PORT + CLUSTER_NODES - 1)))"
  else echo "cluster: stopped or not ok"; rc=1; fi
  if pid="$(mysql_pid)" && mysql_ready >/dev/null 2>&1; then echo "mariadb: running (pid $pid, 127.0.0.1:$MYSQL_PORT)"
  else echo "mariadb: stopped"; rc=1; fi
  return $rc
}

cmd_env() {
  echo "export IFRIEND_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export IFRIEND_TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:$CLUSTER_PORT/0"
  echo "export IFRIEND_TEST_MYSQL_URL=mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MYSQL_PORT/$DB_NAME"
}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
