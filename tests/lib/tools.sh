# shellcheck shell=bash
# The cloud sync tests' servers, installed only when missing (source after tests/lib/install.sh):
#
#   need_postgres    Debian's PostgreSQL server binaries (/usr/lib/postgresql/<ver>/bin/initdb);
#                    the tests start their own throwaway cluster with them, never the system one.
#   need_postrust    postrust (crate postrust-server), a PostgREST-compatible server, built once
#                    with `cargo install` into a tools cache outside the clone ($NEXERO_TOOLS,
#                    default ~/.cache/nexero-tools) and reused by later runs; exports
#                    NEXERO_POSTRUST with its path. Not --locked: its lockfile pins a crate
#                    version the registry mirror lacks. The first build takes 3-8 minutes.

need_postgres() {
    local initdb
    for initdb in /usr/lib/postgresql/*/bin/initdb; do
        [[ -x $initdb ]] && return 0
    done
    echo "== installing missing packages: postgresql"
    apt_install postgresql
}

need_postrust() {
    local tools=${NEXERO_TOOLS:-$HOME/.cache/nexero-tools}
    export NEXERO_POSTRUST=${NEXERO_POSTRUST:-$tools/bin/postrust}
    [[ -x $NEXERO_POSTRUST ]] && return 0
    echo "== installing postrust-server into $tools (once; a few minutes)"
    mkdir -p "$tools"
    if ! cargo install postrust-server --root "$tools" --quiet; then
        echo "!! cargo install postrust-server failed" >&2
        return 1
    fi
    NEXERO_POSTRUST=$tools/bin/postrust
}
