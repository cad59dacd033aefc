#!/usr/bin/env bash
# Windows stage: cross-builds nexero.exe (x86_64-pc-windows-gnu, debug) and runs it under Wine:
# console mode, then the real service path through Wine's service manager (install, start,
# RUNNING, /health, an upload, sc stop -> STOPPED, a bad configuration -> STOPPED with the
# service-specific exit code, uninstall). Recipe and pitfalls: docs/windows-under-wine.md.
# Installs mingw-w64, wine and the Rust target only when they are missing, so that it runs
# offline once they are there.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/install.sh
started=$SECONDS

CONSOLE_PORT=18083
SERVICE_PORT=18084
SVC=Nexero

echo "== windows: packages (mingw-w64 cross compiler, wine)"
# Each is checked first; apt runs (update + install of just the missing ones) only when one is
# missing. wine64 puts no command on PATH ("wine" is the wrapper that runs it), hence the path.
need_packages \
    x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64-win32 \
    wine:wine \
    wineserver:wine \
    wineboot:wine \
    /usr/lib/wine/wine64:wine64 \
    curl:curl

echo "== windows: rust target"
# Added (a download from rustup's own server) only when it is not installed yet.
installed_targets=$(rustup target list --installed 2>/dev/null || true)
if grep -qx x86_64-pc-windows-gnu <<<"$installed_targets"; then
    :
elif ! rustup target add x86_64-pc-windows-gnu; then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!! cannot download the Rust standard library for x86_64-pc-windows-gnu (rustup)." >&2
    echo "!! The Windows build and the Windows service test cannot run without it." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    exit 1
fi

echo "== windows: cross build (debug)"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
cargo build --locked --target x86_64-pc-windows-gnu

echo "== windows: wine prefix"
WINEPREFIX=$(mktemp -d /tmp/nexero-wineprefix.XXXXXX)
WORK=$(mktemp -d /tmp/nexero-winsvc.XXXXXX)
export WINEPREFIX WINEDEBUG=-all WINEARCH=win64
export WINEDLLOVERRIDES="mscoree,mshtml="   # never try to fetch Mono or Gecko
# Wine's harmless chatter is kept out of the output; fail() prints all of it, unfiltered.
SETUP_LOG=$WORK/wine-setup.log        # wineboot/wineserver output (Wine processes started in
                                      # that session, e.g. services.exe, may write there too)
WINE_STDERR_LOG=$WORK/wine-stderr.log # stderr of every foreground wine command
CONSOLE_LOG=$WORK/console-stderr.log  # stderr of nexero.exe in console mode
WINE_NOISE='^(it looks like wine32 is missing|multiarch needs to be enabled first'
WINE_NOISE+='|execute "dpkg --add-architecture i386|apt-get install wine32|as root, please execute'
WINE_NOISE+='|wine: created the configuration directory|wine: configuration in .* has been updated'
WINE_NOISE+='|[0-9a-f]{4}:err:(rundll32|winediag|systray|explorer|ole|ntlm|mscoree|mshtml|wineboot|setupapi):'
WINE_NOISE+=')|Could not find Wine (Gecko|Mono)'
# Not filtered: any other err channel (e.g. sc.exe's own errors under WINEDEBUG=err+all).
drop_wine_noise() { grep -v -E "$WINE_NOISE" || true; }
# quiet_wine CMD...: runs a foreground command, shows its stderr without the noise, keeps its
# exit code. The stderr goes through a file, not a pipe: a Wine child that outlives the command
# (a freshly booted services.exe) would keep a pipe open and hang the script.
quiet_wine() {
    local rc=0
    "$@" 2>"$WORK/last-stderr.txt" || rc=$?
    cat "$WORK/last-stderr.txt" >>"$WINE_STDERR_LOG"
    drop_wine_noise <"$WORK/last-stderr.txt" >&2
    return "$rc"
}
PROGRAM_DATA="$WINEPREFIX/drive_c/ProgramData/Nexero"
fail() {
    echo "FAILED: $*" >&2
    echo "--- service log files" >&2
    cat "$PROGRAM_DATA"/logs/* >&2 2>/dev/null || echo "(none)" >&2
    local log
    for log in "$SETUP_LOG" "$WINE_STDERR_LOG" "$CONSOLE_LOG"; do
        echo "--- $(basename "$log") (unfiltered)" >&2
        if [[ -s $log ]]; then cat "$log" >&2; else echo "(empty)" >&2; fi
    done
    echo "--- sc query" >&2
    timeout 30 wine sc query "$SVC" >&2 || true
    exit 1
}
CONSOLE_PID=
cleanup() {
    if [[ -n $CONSOLE_PID ]]; then kill "$CONSOLE_PID" 2>/dev/null || true; fi
    wineserver -k 2>/dev/null || true
    wineserver -w 2>/dev/null || true
    # Debian's wine keeps its server socket in /tmp/wine-XXXXXX, named in $WINEPREFIX/wineserver.
    local sock
    sock=$(cat "$WINEPREFIX/wineserver" 2>/dev/null || true)
    if [[ $sock == wine-* ]]; then rm -rf "/tmp/$sock"; fi
    rm -rf "$WINEPREFIX" "$WORK"
}
trap cleanup EXIT
# The order matters (see docs/windows-under-wine.md): create, let that session end, then one
# persistent server that keeps services.exe and our service alive between wine commands.
# Their output (prefix creation chatter) goes to the setup log, which fail() prints.
setup_step() { "$@" >>"$SETUP_LOG" 2>&1 || fail "wine setup: '$*' failed (exit $?)"; }
setup_step wineboot -i
setup_step wineserver -w
setup_step wineserver -p
setup_step wine wineboot
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    .ci/bcryptprimitives.c -ladvapi32

cp target/x86_64-pc-windows-gnu/debug/nexero.exe "$WORK/"
EXE="$WORK/nexero.exe"
winpath() { echo "Z:${1//\//\\}"; }
health() { curl -fsS -m 2 "http://127.0.0.1:$1/health"; }
wait_health() {
    for _ in $(seq 1 150); do
        if health "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}
sc_state() { quiet_wine timeout 30 wine sc query "$SVC" | sed -n 's/.*STATE *: *[0-9]* *\([A-Z_]*\).*/\1/p'; }
wait_state() {
    for _ in $(seq 1 150); do
        if [[ $(sc_state) == "$1" ]]; then return 0; fi
        sleep 0.2
    done
    return 1
}
upload() {
    curl -fsS -m 10 -H 'Content-Type: application/json' -H 'X-Device-Key: wine-headset' \
        -d '{"POI": "Kitchen", "Parent": "Unit_A", "POI_Duration": "0:45"}' \
        -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/api/v1/unreal/session"
}

echo "== windows: console mode (nexero.exe serve), Ctrl-C"
# Its stderr (nexero's log lines) is shown live, less Wine's noise; $! is still wine's own PID.
wine "$EXE" serve --bind 127.0.0.1 --port "$CONSOLE_PORT" --data-dir "$(winpath "$WORK/console")" \
    2> >(tee -a "$CONSOLE_LOG" | drop_wine_noise >&2) &
CONSOLE_PID=$!
wait_health "$CONSOLE_PORT" || fail "console mode did not answer /health on port $CONSOLE_PORT"
H=$(health "$CONSOLE_PORT")
echo "$H"
grep -q '"journal_mode":"wal"' <<<"$H" || fail "console mode: the database is not in WAL mode"
[[ $(upload "$CONSOLE_PORT") == 201 ]] || fail "console mode: the upload was not stored"
kill -INT "$CONSOLE_PID"
for _ in $(seq 1 150); do kill -0 "$CONSOLE_PID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$CONSOLE_PID" 2>/dev/null; then fail "console mode: still running 30 s after Ctrl-C"; fi
wait "$CONSOLE_PID" || fail "console mode: Ctrl-C did not end in a clean exit"
CONSOLE_PID=
[[ -s $WORK/console/nexero.db ]] || fail "console mode: no database file"
[[ ! -s $WORK/console/nexero.db-wal ]] || fail "console mode: the WAL was not checkpointed on Ctrl-C"

echo "== windows: service install (twice: the second run, like an upgrade, updates it and keeps its settings)"
FIRST=$(quiet_wine timeout 60 wine "$EXE" service install --bind 127.0.0.1 --port "$SERVICE_PORT")
echo "$FIRST"
AGAIN=$(quiet_wine timeout 60 wine "$EXE" service install)
echo "$AGAIN"
grep -q '^updated' <<<"$AGAIN" || fail "a second install did not update the existing service"
KEY='HKLM\System\CurrentControlSet\Services\Nexero'
REG=$(quiet_wine timeout 30 wine reg query "$KEY")
echo "$REG"
grep -q 'nexero.exe service run .*--data-dir C:\\ProgramData\\Nexero' <<<"$REG" \
    || fail "the service command line is not 'nexero.exe service run ... --data-dir C:\\ProgramData\\Nexero'"
grep -q -- "--bind 127.0.0.1 .*--port $SERVICE_PORT" <<<"$REG" || fail "the settings given at the first install were not kept"
grep -Eq 'Start +REG_DWORD +0x2' <<<"$REG" || fail "the service is not Automatic"
# Wine 8 refuses the delayed-start level (error 124); install then says so instead of failing.
grep -Eq 'DelayedAutostart +REG_DWORD +0x1' <<<"$REG" || grep -q 'does not support delayed automatic start' <<<"$FIRST" \
    || fail "the service is not delayed-start"
grep -q 'LocalSystem' <<<"$REG" || fail "the service does not run as LocalSystem"
grep -q 'Nexero Showroom' <<<"$REG" || fail "no display name"
SOURCE=$(quiet_wine timeout 30 wine reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\Nexero' || true)
grep -q EventMessageFile <<<"$SOURCE" || fail "no Event Log source"

echo "== windows: service start -> RUNNING, /health, an upload"
quiet_wine timeout 90 wine "$EXE" service start || fail "nexero service start failed"
[[ $(sc_state) == RUNNING ]] || fail "sc query does not say RUNNING"
wait_health "$SERVICE_PORT" || fail "the service did not answer /health"
health "$SERVICE_PORT"
echo
[[ $(upload "$SERVICE_PORT") == 201 ]] || fail "the service did not store an upload"
STATUS=$(quiet_wine timeout 60 wine "$EXE" service status)
echo "$STATUS"
grep -q 'state: *running' <<<"$STATUS" || fail "service status does not say running"
grep -q "port: *$SERVICE_PORT" <<<"$STATUS" || fail "service status does not show the port"
grep -q 'data directory: *C:\\ProgramData\\Nexero' <<<"$STATUS" || fail "service status does not show the data directory"
grep -q 'database: *[0-9.]* MB' <<<"$STATUS" || fail "service status does not show the database size"
grep -q 'last sync:' <<<"$STATUS" || fail "service status does not show the last sync"
SVCPID=$(pgrep -f 'nexero.exe service run' | head -1)   # look-up only; never killed by name

echo "== windows: sc stop -> STOPPED, process gone, WAL checkpointed"
quiet_wine timeout 30 wine sc stop "$SVC"
wait_state STOPPED || fail "sc stop did not reach STOPPED"
for _ in $(seq 1 100); do kill -0 "$SVCPID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$SVCPID" 2>/dev/null; then fail "the service process is still alive after STOPPED"; fi
if health "$SERVICE_PORT" >/dev/null 2>&1; then fail "still serving after STOPPED"; fi
[[ -s $PROGRAM_DATA/nexero.db ]] || fail "no database under %ProgramData%\\Nexero"
[[ ! -s $PROGRAM_DATA/nexero.db-wal ]] || fail "the WAL was not checkpointed on stop"
grep -q 'is running on' "$PROGRAM_DATA"/logs/nexero.*log || fail "no 'running' line in the rotating log file"
grep -q 'database was closed cleanly' "$PROGRAM_DATA"/logs/nexero.*log || fail "no clean-stop line in the log file"

echo "== windows: the upload survived the restart (sc start)"
# sc.exe reports failures only on Wine's err channel; that channel is not filtered.
quiet_wine env WINEDEBUG=err+all timeout 30 wine sc start "$SVC" || fail "sc start failed"
wait_health "$SERVICE_PORT" || fail "the service did not come back after sc start"
grep -Eq '"tours":[1-9]' <<<"$(health "$SERVICE_PORT")" || fail "the stored tour is gone after a restart"
quiet_wine timeout 90 wine "$EXE" service stop || fail "nexero service stop failed"
[[ $(sc_state) == STOPPED ]] || fail "nexero service stop did not end in STOPPED"

echo "== windows: a bad configuration ends in STOPPED with service exit code 2, not a hang"
printf 'site_timezone = "Mars/Olympus_Mons"\n' >"$PROGRAM_DATA/nexero.toml"
bad_started=$SECONDS
rc=0
timeout 90 wine "$EXE" service start >"$WORK/bad-start.txt" 2>&1 || rc=$?
drop_wine_noise <"$WORK/bad-start.txt"
echo "(nexero service start exited with $rc after $((SECONDS - bad_started)) s)"
[[ $rc != 0 ]] || fail "the service started with a bad configuration"
grep -q 'exit code 2 (invalid configuration)' "$WORK/bad-start.txt" || fail "start did not explain the exit code"
wait_state STOPPED || fail "a bad configuration did not end in STOPPED"
Q=$(quiet_wine timeout 30 wine sc query "$SVC")
echo "$Q"
grep -Eq 'WIN32_EXIT_CODE *: *1066' <<<"$Q" || fail "the exit is not service-specific (1066)"
grep -Eq 'SERVICE_EXIT_CODE *: *2\b' <<<"$Q" || fail "the service-specific exit code is not 2"
grep -q 'Mars/Olympus_Mons' "$PROGRAM_DATA"/logs/nexero.*log || fail "the log file does not name the bad setting"
rm "$PROGRAM_DATA/nexero.toml"

echo "== windows: uninstall while running stops, waits and removes; the data stays"
quiet_wine timeout 90 wine "$EXE" service start || fail "the service did not start again after fixing the configuration"
quiet_wine timeout 120 wine "$EXE" service uninstall || fail "nexero service uninstall failed"
if timeout 30 wine sc query "$SVC" >/dev/null 2>&1; then fail "the service is still registered"; fi
if timeout 30 wine reg query "$KEY" >/dev/null 2>&1; then fail "the service's registry key is still there"; fi
[[ -s $PROGRAM_DATA/nexero.db ]] || fail "uninstall deleted the data"
if health "$SERVICE_PORT" >/dev/null 2>&1; then fail "still serving after uninstall"; fi

echo "windows service test: ok ($((SECONDS - started)) s)"
