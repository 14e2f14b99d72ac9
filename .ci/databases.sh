#!/usr/bin/env bash
# Start throwaway PostgreSQL and MariaDB servers for the test suites and print their URLs:
#
#   eval "$(.ci/databases.sh)"   # sets BALROG_TEST_POSTGRESQL_URL and BALROG_TEST_MYSQL_URL
#
# - Installs Debian's `postgresql` and `mariadb-server` packages if they are missing (root only).
# - Both servers keep everything (data, sockets, logs) in one state directory,
#   $BALROG_CI_DB_DIR (default /tmp/balrog-ci-databases), listen on 127.0.0.1 only, on
#   $BALROG_CI_PG_PORT (55432) and $BALROG_CI_MYSQL_PORT (53306), and are tuned for speed,
#   not durability (fsync off): test data only.
# - Idempotent: servers that are already running from the state directory are reused, and
#   the test user and database are (re)created only if missing.
# - As root, PostgreSQL runs as `postgres` and MariaDB as `mysql`; as any other user both run
#   as that user (the packages must then be installed already).
# - Only the `export …` lines go to stdout; progress and errors go to stderr. Any failure
#   exits non-zero, so `eval "$(…)"` under `set -e` fails CI.
# Stop them with:  .ci/databases.sh stop
set -euo pipefail

STATE=${BALROG_CI_DB_DIR:-${TMPDIR:-/tmp}/balrog-ci-databases}
PG_PORT=${BALROG_CI_PG_PORT:-55432}
MY_PORT=${BALROG_CI_MYSQL_PORT:-53306}
DB_USER=balrog
DB_PASSWORD=balrog-test
DB_NAME=balrog_test
TIMEOUT=60

log() { echo "databases.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if [ "$(id -u)" = 0 ]; then ROOT=1; else ROOT=; fi

# Run a command as the database's system user (root only; otherwise as ourselves).
as_user() {
    local user=$1; shift
    if [ -n "$ROOT" ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# --- packages ------------------------------------------------------------------------------------
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
mariadbd_path() { command -v mariadbd || command -v mysqld || ls /usr/sbin/mariadbd /usr/sbin/mysqld 2>/dev/null | head -n 1; }

install_packages() {
    local missing=()
    [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] || missing+=(postgresql)
    [ -n "$(mariadbd_path)" ] || missing+=(mariadb-server)
    [ ${#missing[@]} = 0 ] && return 0
    [ -n "$ROOT" ] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    log "installing ${missing[*]} from Debian's packages"
    # The packages' own services are not wanted (policy-rc.d may forbid starting them anyway).
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# --- PostgreSQL ----------------------------------------------------------------------------------
PGDATA_DIR=$STATE/postgresql
PG_SOCKET_DIR=$STATE/postgresql-socket
PG_LOG=$STATE/postgresql.log

# The superuser is the system user that runs the server (peer authentication on the socket).
if [ -n "$ROOT" ]; then PG_SUPERUSER=postgres; else PG_SUPERUSER=$(id -un); fi
pg_ctl_() { as_user postgres "$(pg_bindir)/pg_ctl" -D "$PGDATA_DIR" "$@"; }
psql_() { as_user postgres "$(pg_bindir)/psql" -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U "$PG_SUPERUSER" -X -q -v ON_ERROR_STOP=1 "$@"; }

start_postgresql() {
    local bin; bin=$(pg_bindir)
    if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
        log "initdb $PGDATA_DIR"
        rm -rf "$PGDATA_DIR"
        mkdir -p "$PGDATA_DIR"
        [ -z "$ROOT" ] || chown postgres: "$PGDATA_DIR"
        chmod 700 "$PGDATA_DIR"
        # peer auth on the socket (the admin user), passwords over TCP (the test user).
        as_user postgres "$bin/initdb" -D "$PGDATA_DIR" -U "$PG_SUPERUSER" --encoding=UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >&2
        cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# balrog CI: local only, fast, not durable
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    fi
    mkdir -p "$PG_SOCKET_DIR"
    [ -z "$ROOT" ] || chown postgres: "$PG_SOCKET_DIR"
    if pg_ctl_ status >/dev/null 2>&1; then
        log "PostgreSQL already running ($PGDATA_DIR)"
    else
        log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        touch "$PG_LOG"; [ -z "$ROOT" ] || chown postgres: "$PG_LOG"
        # The server must not hold this script's stdout/stderr (or a flock) open.
        pg_ctl_ -l "$PG_LOG" -w -t "$TIMEOUT" start </dev/null >/dev/null 2>&1 9>&- \
            || { tail -n 30 "$PG_LOG" >&2; die "PostgreSQL did not start (log: $PG_LOG)"; }
    fi
    local i
    for ((i = 0; i < TIMEOUT * 4; i++)); do
        psql_ -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.25
    done
    psql_ -d postgres -c 'SELECT 1' >/dev/null || die "PostgreSQL does not accept connections (log: $PG_LOG)"
    # The test database sorts linguistically (ICU en-US), as production databases usually do:
    # the storage must not depend on the database's collation.
    psql_ -d postgres <<EOF
SELECT 'CREATE ROLE $DB_USER LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER')\\gexec
ALTER ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING ''UTF8'' TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE ''en-US'' LOCALE ''C.UTF-8''' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\\gexec
EOF
    # The conformance suite creates a schema per scenario.
    psql_ -d "$DB_NAME" -c "GRANT CREATE ON DATABASE $DB_NAME TO $DB_USER" >/dev/null
    PGPASSWORD=$DB_PASSWORD "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" -X -q -c 'SELECT 1' >/dev/null \
        || die "the test user cannot log in to PostgreSQL over TCP"
}

# --- MariaDB -------------------------------------------------------------------------------------
MY_DATA_DIR=$STATE/mariadb
MY_RUN_DIR=$STATE/mariadb-run  # socket, pid file and log: owned by the server's user
MY_SOCKET=$MY_RUN_DIR/mariadb.sock
MY_PID=$MY_RUN_DIR/mariadb.pid
MY_LOG=$MY_RUN_DIR/mariadb.log

# Pattern for the per-scenario databases (balrog_test_<anything>), `_` escaped for GRANT.
MY_DB_PATTERN='balrog\_test\_%'
# As root: the server runs as `mysql`, the admin is root@localhost by unix-socket auth (the
# system user running the client). Otherwise both are the invoking user.
if [ -n "$ROOT" ]; then MY_SYSTEM_USER=mysql; MY_ADMIN=root; else MY_SYSTEM_USER=$(id -un); MY_ADMIN=$MY_SYSTEM_USER; fi

mariadb_() { "$(command -v mariadb || command -v mysql)" --no-defaults "$@"; }
my_admin() { mariadb_ --socket="$MY_SOCKET" -u "$MY_ADMIN" "$@"; }
my_alive() { [ -S "$MY_SOCKET" ] && my_admin -e 'SELECT 1' >/dev/null 2>&1; }

start_mariadb() {
    local server; server=$(mariadbd_path)
    if [ ! -d "$MY_DATA_DIR/mysql" ]; then
        log "mariadb-install-db $MY_DATA_DIR"
        rm -rf "$MY_DATA_DIR"
        mkdir -p "$MY_DATA_DIR"
        [ -z "$ROOT" ] || chown mysql: "$MY_DATA_DIR"
        local install_db; install_db=$(command -v mariadb-install-db || command -v mysql_install_db)
        # root@localhost and <server user>@localhost authenticate by unix socket.
        "$install_db" --no-defaults --datadir="$MY_DATA_DIR" --user="$MY_SYSTEM_USER" \
            --auth-root-authentication-method=socket \
            --skip-test-db >"$STATE/mariadb-install.log" 2>&1 \
            || { tail -n 30 "$STATE/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    mkdir -p "$MY_RUN_DIR"
    [ -z "$ROOT" ] || chown mysql: "$MY_RUN_DIR"
    if my_alive; then
        log "MariaDB already running ($MY_DATA_DIR)"
    else
        log "starting MariaDB on 127.0.0.1:$MY_PORT"
        rm -f "$MY_SOCKET" "$MY_PID"
        # Detached, no inherited stdout/stderr/flock: `$(…)` around this script must not wait for it.
        setsid "$server" --no-defaults --user="$MY_SYSTEM_USER" --datadir="$MY_DATA_DIR" \
            --socket="$MY_SOCKET" --pid-file="$MY_PID" --log-error="$MY_LOG" \
            --port="$MY_PORT" --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
            --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-binlog=0 \
            --innodb-buffer-pool-size=256M --max-connections=300 \
            </dev/null >>"$STATE/mariadb-stderr.log" 2>&1 9>&- &
        local pid=$! i
        for ((i = 0; i < TIMEOUT * 4; i++)); do
            my_alive && break
            kill -0 "$pid" 2>/dev/null || break  # exited: no point waiting
            sleep 0.25
        done
        my_alive || { tail -n 30 "$STATE/mariadb-stderr.log" "$MY_LOG" >&2; die "MariaDB did not start (log: $MY_LOG)"; }
    fi
    # The test database has a case- and accent-insensitive default collation, as production
    # databases usually do: the storage must not depend on it.
    # The conformance suite creates a database per scenario: balrog_test_<anything>.
    my_admin <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
ALTER DATABASE $DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$MY_DB_PATTERN\`.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
    mariadb_ --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u "$DB_USER" -p"$DB_PASSWORD" "$DB_NAME" \
        -e 'SELECT 1' >/dev/null || die "the test user cannot log in to MariaDB over TCP"
}

# --- stop ----------------------------------------------------------------------------------------
stop_all() {
    if [ -n "$(pg_bindir)" ] && [ -d "$PGDATA_DIR" ] && pg_ctl_ status >/dev/null 2>&1; then
        pg_ctl_ -m fast -w stop >&2
    fi
    if [ -s "$MY_PID" ]; then
        local pid; pid=$(cat "$MY_PID")
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        log "MariaDB stopped"
    fi
}

# --- main ----------------------------------------------------------------------------------------
mkdir -p "$STATE"
chmod 755 "$STATE"  # the server users must reach their directories
exec 9>"$STATE/lock"
flock -w 300 9 || die "another databases.sh holds $STATE/lock"

if [ "${1:-start}" = stop ]; then
    stop_all
    exit 0
fi

install_packages
start_postgresql
start_mariadb

echo "export BALROG_TEST_POSTGRESQL_URL='postgresql+psycopg://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME'"
echo "export BALROG_TEST_MYSQL_URL='mysql+pymysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MY_PORT/$DB_NAME?charset=utf8mb4'"
log "PostgreSQL and MariaDB are ready (state in $STATE)"
