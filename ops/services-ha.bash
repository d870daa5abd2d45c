# Sourced by ops/services (not run on its own): the synchronous PostgreSQL standby (--pg-standby) and the three-server
# NATS JetStream cluster (--nats-cluster). Each mode is remembered by the instance (a marker file in its folder) so that
# the later `stop|start postgres|nats` of a chaos run act on the same layout; `ops/services start` (all) without the
# flag returns the instance to the single server of before. Without either flag nothing here changes ops/services.
#
# PostgreSQL: node a is pgdata on PG_PORT, node b is pgdata-b on PG_STANDBY_PORT; $STATE_DIR/pg-primary says which
# one is primary. The standby is made with pg_basebackup -R from the primary and streams as application_name
# rpstandby; once it streams, the primary gets synchronous_standby_names = 'rpstandby' (synchronous_commit stays on),
# so a commit is acknowledged only once the standby has it. After `pg-failover` (kill -9 of the primary, pg_ctl
# promote of the standby) the promoted server runs alone with synchronous_standby_names empty (its commits would wait
# for nobody otherwise); `pg-resync` then throws the old primary's folder away and makes it a standby of the new
# primary, and synchronous commit is turned back on. The old primary is never started as a primary again.

PG_HA_MARK="$ENV_DIR/pg-standby.on"
NATS_CLUSTER_MARK="$ENV_DIR/nats-cluster.on"
PG_HA=0
NATS_CLUSTER=0
PG_BASE_PORT="$PG_PORT"
STANDBY_NAME=rpstandby

# `start`/`restart` of everything set the modes from the flags; everything else reads them from the markers.
if { [ "${1:-}" = start ] || [ "${1:-}" = restart ]; } && [ "${2:-all}" = all ]; then
  if [ -n "$PG_STANDBY_FLAG" ]; then touch "$PG_HA_MARK"; else rm -f "$PG_HA_MARK"; fi
  if [ -n "$NATS_CLUSTER_FLAG" ]; then touch "$NATS_CLUSTER_MARK"; else rm -f "$NATS_CLUSTER_MARK"; fi
fi
[ -f "$PG_HA_MARK" ] && PG_HA=1
[ -f "$NATS_CLUSTER_MARK" ] && NATS_CLUSTER=1
[ "$NATS_CLUSTER" = 1 ] && [ "$NATS_TLS" = 1 ] && die "--nats-cluster with --nats-tls is not supported (the cluster runs plain NATS on loopback)"

node_data() { if [ "$1" = a ]; then echo "$STATE_DIR/pgdata"; else echo "$STATE_DIR/pgdata-b"; fi; }
node_port() { if [ "$1" = a ]; then echo "$PG_BASE_PORT"; else echo "$PG_STANDBY_PORT"; fi; }
other_node() { if [ "$1" = a ]; then echo b; else echo a; fi; }
primary_node() { cat "$STATE_DIR/pg-primary" 2>/dev/null || echo a; }
# A postmaster killed with -9 may stay a zombie (nothing reaps it here), which pg_ctl status counts as running.
pid_alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat"; }
node_running() { local d; d="$(node_data "$1")"; [ -f "$d/postmaster.pid" ] && pid_alive "$(head -n 1 "$d/postmaster.pid")"; }
# The socket lock of a postmaster killed with -9 stays behind with its pid; while that pid is a zombie PostgreSQL takes
# it for a live server ("lock file ... already exists") and refuses to start on the port: removed when its pid is dead.
clear_stale_socket_lock() {
  local lock="$PG_SOCK/.s.PGSQL.$1.lock"
  if [ -f "$lock" ] && ! pid_alive "$(head -n 1 "$lock")"; then rm -f "$lock" "$PG_SOCK/.s.PGSQL.$1"; log "removed the stale socket lock of port $1"; fi
}
node_sql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$(node_port "$1")" -U postgres -d postgres -Atqc "$2"; }

if [ "$PG_HA" = 1 ]; then
  PRIMARY="$(primary_node)"
  STANDBY="$(other_node "$PRIMARY")"
  PG_DATA="$(node_data "$PRIMARY")"
  PG_PORT="$(node_port "$PRIMARY")"
  PG_LOG="$STATE_DIR/postgres-$PRIMARY.log"
elif [ "$(primary_node)" = b ] || [ -d "$STATE_DIR/pgdata-b" ]; then
  # Back to a single server after a standby run: the current primary's folder becomes pgdata, the standby goes.
  for n in a b; do node_running "$n" && pg pg_ctl -D "$(node_data "$n")" -m fast -w stop >/dev/null; done
  if [ "$(primary_node)" = b ]; then rm -rf "$STATE_DIR/pgdata"; mv "$STATE_DIR/pgdata-b" "$STATE_DIR/pgdata"; fi
  rm -rf "$STATE_DIR/pgdata-b" "$STATE_DIR/pg-primary" "$STATE_DIR/pgdata/standby.signal"
  [ -f "$STATE_DIR/pgdata/postgresql.auto.conf" ] && sed -i '/^synchronous_standby_names\|^primary_conninfo/d' "$STATE_DIR/pgdata/postgresql.auto.conf"
  log "postgres back to a single server (the standby's folder removed)"
fi

# The standby: started if its folder is a standby, else made again from the primary; then synchronous commit on.
ha_start_standby() {
  local data port; data="$(node_data "$STANDBY")"; port="$(node_port "$STANDBY")"
  if [ -f "$data/standby.signal" ] && [ -f "$data/PG_VERSION" ]; then
    pg_allow_extra_clients "$data"
    if ! node_running "$STANDBY"; then
      clear_stale_socket_lock "$port"
      pg pg_ctl -D "$data" -l "$STATE_DIR/postgres-$STANDBY.log" -o "-p $port -k $PG_SOCK$PG_LISTEN_OPT" -w -t 60 start >/dev/null \
        || { tail -n 20 "$STATE_DIR/postgres-$STANDBY.log" >&2; die "the standby did not start"; }
    fi
    # A standby left behind by an interrupted run may need WAL the primary has already removed: made again instead.
    if ! wait_for standby standby_streaming 20; then
      log "the standby (node $STANDBY) does not stream from the primary (too far behind?): making it again"
      ha_resync
      return
    fi
  else
    ha_resync
    return
  fi
  ha_sync_on
}

# Throws the standby's folder away and makes it again from the primary with pg_basebackup -R.
ha_resync() {
  local data port; data="$(node_data "$STANDBY")"; port="$(node_port "$STANDBY")"
  if node_running "$STANDBY"; then pg pg_ctl -D "$data" -m immediate -w stop >/dev/null || true; fi
  rm -rf "$data"; mkdir -p "$data"; [ "$(id -u)" -eq 0 ] && chown postgres "$data"; chmod 700 "$data"
  log "making node $STANDBY a standby of node $PRIMARY (pg_basebackup from 127.0.0.1:$PG_PORT)"
  pg pg_basebackup -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$data" -R -X stream -c fast >"$STATE_DIR/basebackup.log" 2>&1 \
    || { cat "$STATE_DIR/basebackup.log" >&2; die "pg_basebackup from the primary failed"; }
  # The copy carries the primary's settings: a standby waits for no standby of its own, and names itself.
  sed -i '/^synchronous_standby_names\|^primary_conninfo/d' "$data/postgresql.auto.conf"
  echo "primary_conninfo = 'host=127.0.0.1 port=$PG_PORT user=postgres application_name=$STANDBY_NAME'" >>"$data/postgresql.auto.conf"
  pg_allow_extra_clients "$data"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$data"
  clear_stale_socket_lock "$port"
  pg pg_ctl -D "$data" -l "$STATE_DIR/postgres-$STANDBY.log" -o "-p $port -k $PG_SOCK$PG_LISTEN_OPT" -w -t 60 start >/dev/null \
    || { tail -n 20 "$STATE_DIR/postgres-$STANDBY.log" >&2; die "the standby did not start"; }
  ha_sync_on
}

standby_streaming() { [ "$(node_sql "$PRIMARY" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$STANDBY_NAME' AND state = 'streaming'" 2>/dev/null)" = 1 ]; }
standby_sync() { [ "$(node_sql "$PRIMARY" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$STANDBY_NAME' AND sync_state = 'sync'" 2>/dev/null)" = 1 ]; }

# Once the standby streams: the primary acknowledges a commit only when the standby has flushed it.
ha_sync_on() {
  wait_for standby standby_streaming 60 || die "the standby (node $STANDBY, port $(node_port "$STANDBY")) does not stream from the primary"
  node_sql "$PRIMARY" "ALTER SYSTEM SET synchronous_standby_names = '$STANDBY_NAME'" >/dev/null
  node_sql "$PRIMARY" "SELECT pg_reload_conf()" >/dev/null
  wait_for sync standby_sync 30 || die "the standby streams but is not synchronous"
  log "standby node $STANDBY on 127.0.0.1:$(node_port "$STANDBY") streams synchronously from node $PRIMARY on 127.0.0.1:$PG_PORT"
}

# kill -9 of the primary (postmaster and its children at once), promotion of the standby, synchronous commit off.
ha_failover() { ha_kill_primary; ha_promote; }

# kill -9 of the primary, refused unless the standby is synchronous (an acknowledged commit is then on it).
ha_kill_primary() {
  standby_sync || die "no synchronous standby to fail over to (node $STANDBY)"
  local pm pids
  pm="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
  [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null || die "the primary (node $PRIMARY) is not running"
  pids="$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  log "kill -9 primary node $PRIMARY (postmaster $pm and its children) on 127.0.0.1:$PG_PORT" >&2
}

# pg_ctl promote of the standby (the primary must be dead: nothing here fences it), synchronous commit off on it.
ha_promote() {
  local pm; pm="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
  if pid_alive "$pm"; then die "the primary (node $PRIMARY) still runs: kill it first (pg-kill-primary)"; fi
  local data port; data="$(node_data "$STANDBY")"; port="$(node_port "$STANDBY")"
  pg pg_ctl -D "$data" -w -t 60 promote >/dev/null || die "pg_ctl promote of node $STANDBY failed"
  promoted() { [ "$(node_sql "$STANDBY" "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; }
  wait_for promoted promoted 60 || die "node $STANDBY did not leave recovery"
  node_sql "$STANDBY" "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
  node_sql "$STANDBY" "SELECT pg_reload_conf()" >/dev/null
  echo "$STANDBY" >"$STATE_DIR/pg-primary"
  log "promoted node $STANDBY on 127.0.0.1:$port (runs alone until ops/services pg-resync)" >&2
  echo "$port"
}

ha_stop_standby() {
  if node_running "$STANDBY"; then pg pg_ctl -D "$(node_data "$STANDBY")" -m fast -w stop >/dev/null && log "standby stopped"; fi
}

ha_database_url() {
  if [ "$PG_HA" = 1 ]; then
    echo "postgresql://postgres@127.0.0.1:$PG_BASE_PORT,127.0.0.1:$PG_STANDBY_PORT/$DB_NAME?target_session_attrs=read-write"
  else
    echo "postgresql://postgres@127.0.0.1:$PG_PORT/$DB_NAME"
  fi
}

# --- NATS cluster: nodes 1..3 ---------------------------------------------------------------------------------------

cnode_dir() { echo "$NATS_DIR/n$1"; }
cnode_port() { echo $((NATS_PORT + $1 - 1)); }
cnode_http() { echo $((NATS_HTTP_PORT + $1 - 1)); }
cnode_running() { local p; p="$(cnode_dir "$1")/nats.pid"; [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null; }
cnode_up() { curl -fsS "http://127.0.0.1:$(cnode_http "$1")/healthz?js-enabled-only=true" >/dev/null 2>&1; }

cluster_start_node() {
  local i=$1 dir; dir="$(cnode_dir "$i")"
  mkdir -p "$dir"
  cnode_running "$i" && return 0
  "$RP_BIN" nats server-config --dir "$NATS_KEYS" --host 127.0.0.1 --port "$(cnode_port "$i")" --http-port "$(cnode_http "$i")" \
    --store-dir "$dir/jetstream" --resolver-dir "$dir/resolver" --output "$dir/nats.conf" || die "routeplane nats server-config failed"
  {
    echo ""
    echo "# ops/services --nats-cluster: node n$i of three on loopback."
    echo "server_name: \"n$i\""
    echo "cluster {"
    echo "  name: \"routeplane\""
    echo "  listen: \"127.0.0.1:$((NATS_CLUSTER_PORT + i - 1))\""
    echo "  routes: [\"nats-route://127.0.0.1:$NATS_CLUSTER_PORT\", \"nats-route://127.0.0.1:$((NATS_CLUSTER_PORT + 1))\", \"nats-route://127.0.0.1:$((NATS_CLUSTER_PORT + 2))\"]"
    echo "}"
  } >>"$dir/nats.conf"
  setsid "$NATS_BIN" -c "$dir/nats.conf" -P "$dir/nats.pid" -l "$dir/nats.log" </dev/null >/dev/null 2>&1 &
}

cluster_up() { cnode_up 1 && cnode_up 2 && cnode_up 3; }

cluster_start() {
  routeplane_bin
  "$RP_BIN" nats init --dir "$NATS_KEYS" >/dev/null || die "routeplane nats init failed"
  for i in 1 2 3; do cluster_start_node "$i"; done
  wait_for nats cluster_up 60 || { for i in 1 2 3; do tail -n 5 "$(cnode_dir "$i")/nats.log" >&2; done; die "the NATS cluster does not answer"; }
  log "nats cluster up on 127.0.0.1:$(cnode_port 1),$(cnode_port 2),$(cnode_port 3) in operator mode (JetStream clustered, stores under $NATS_DIR/n*)"
}

cluster_stop() {
  for i in 1 2 3; do
    local p; p="$(cnode_dir "$i")/nats.pid"
    if cnode_running "$i"; then
      local pid; pid="$(cat "$p")"; kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$p"
  done
  log "nats cluster stopped"
}

# The node leading the ROUTEPLANE_VIEWS stream and the number of servers holding it ("2 3"), from any answering
# node's /jsz ("1 0" when none knows the stream).
cluster_stream_leader() {
  local i found
  for i in 1 2 3; do
    found="$(curl -fsS "http://127.0.0.1:$(cnode_http "$i")/jsz?accounts=true&streams=true" 2>/dev/null \
      | jq -r '[.account_details[]?.stream_detail[]? | select(.name == "ROUTEPLANE_VIEWS") | .cluster | select(.leader != null)
               | "\(.leader | ltrimstr("n")) \((.replicas // []) | length + 1)"] | first // empty' 2>/dev/null || true)"
    if [ -n "$found" ]; then echo "$found"; return 0; fi
  done
  echo "1 0"
}

# kill -9 of the stream's leader; prints "n<i> <servers holding the stream before the kill>".
cluster_kill_leader() {
  local found i replicas p
  found="$(cluster_stream_leader)"; i="${found% *}"; replicas="${found#* }"
  p="$(cnode_dir "$i")/nats.pid"
  cnode_running "$i" || die "node n$i (the stream leader) is not running"
  kill -9 "$(cat "$p")"; rm -f "$p"
  log "kill -9 nats node n$i on 127.0.0.1:$(cnode_port "$i") (leader of ROUTEPLANE_VIEWS, stream on $replicas server(s))" >&2
  echo "n$i $replicas"
}

ha_nats_url() {
  local scheme=nats
  if [ "$NATS_CLUSTER" = 1 ]; then
    echo "nats://127.0.0.1:$(cnode_port 1),nats://127.0.0.1:$(cnode_port 2),nats://127.0.0.1:$(cnode_port 3)"
  else
    nats_tls_on && scheme=tls
    echo "$scheme://127.0.0.1:$NATS_PORT"
  fi
}

if [ "$NATS_CLUSTER" = 1 ]; then
  start_nats() { cluster_start; }
  stop_nats() { cluster_stop; }
  nats_running() { cnode_running 1 || cnode_running 2 || cnode_running 3; }
  nats_up() { cluster_up; }
fi
if [ "$PG_HA" = 1 ]; then
  eval "single_$(declare -f start_postgres)"
  start_postgres() { single_start_postgres; ha_start_standby; }
fi
