# Shell helpers shared by scripts/bench-http and scripts/soak: running Keysmith
# servers on loopback in a work directory. Sourced, not run. The caller sets WORK
# (a directory), BIN (the keysmith binary), PASSWORD (the first admin's),
# LOG_LEVEL, and an array PIDS that its cleanup kills.

# initdb and postgres refuse to run as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A throwaway PostgreSQL cluster in $WORK/pg on loopback, with these databases; the
# caller's cleanup stops it (pg_ctl -D "$WORK/pg" stop). Needs PG_BIN.
start_postgres() { # port database…
    local port=$1; shift
    mkdir -p "$WORK/pg"
    if [ "$(id -u)" = 0 ]; then chown postgres "$WORK/pg"; fi
    as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" \
        -o "-p $port -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=400" -w start >/dev/null
    for db in "$@"; do
        as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
    done
}

wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2; exit 1
}

start_keysmith() { # name port [VAR=value …]
    local name=$1 port=$2; shift 2
    mkdir -p "$WORK/$name"
    env -i PATH="$PATH" HOME="$WORK/$name" KEYSMITH_ADMIN_PASSWORD="$PASSWORD" \
        KEYSMITH_DATA_DIR="$WORK/$name/data" KEYSMITH_LISTEN="127.0.0.1:$port" \
        KEYSMITH_LOG_LEVEL="$LOG_LEVEL" "$@" \
        "$BIN" serve >"$WORK/$name/out.log" 2>"$WORK/$name/err.log" &
    PIDS+=($!)
    wait_port "$port"
}

admin_key() { # url [JSON body of the key] → a new admin key on stdout
    local url=$1 body=${2:-'{"name":"script"}'} jar="$WORK/cookies.$RANDOM"
    local csrf
    csrf=$(curl -fsS -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$url/api/v1/session" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
    curl -fsS -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
        -d "$body" "$url/api/v1/api-keys" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
    rm -f "$jar"
}

