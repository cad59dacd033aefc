# shellcheck shell=bash
# Installs what a test stage needs, and only what is missing, so that the test command runs
# offline once its tools are on the machine. Source it from a stage script:
#
#   source "$(dirname "$0")/../lib/install.sh"     # path relative to the sourcing script
#   need_packages x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64-win32 wine:wine curl:curl
#
# Each argument is CHECK:PACKAGE. CHECK is a command looked up on PATH, or an absolute path that
# must exist (for packages that put no command on PATH, e.g. /usr/lib/wine/wine64:wine64).
# PACKAGE is the Debian package that provides it. Nothing is printed and apt is not touched when
# every check passes; otherwise the missing packages are installed with one `apt-get update` and
# one `apt-get install --no-install-recommends`. Later stages (PostgreSQL, Chromium for the
# browser tests) use the same function.

# Set once `apt-get update` has run in this test run; exported so that stage scripts started by
# tests/run-all.sh do not refresh the package lists a second time.
export NEXERO_APT_UPDATED=${NEXERO_APT_UPDATED:-}

need_packages() {
    local spec check pkg p dup
    local -a missing=()
    for spec in "$@"; do
        check=${spec%%:*}
        pkg=${spec#*:}
        if [[ $spec != *:* || -z $check || -z $pkg ]]; then
            echo "need_packages: bad argument '$spec' (expected CHECK:PACKAGE)" >&2
            return 2
        fi
        if [[ $check == /* ]]; then
            [[ -e $check ]] && continue
        else
            command -v "$check" >/dev/null 2>&1 && continue
        fi
        dup=
        for p in "${missing[@]}"; do [[ $p == "$pkg" ]] && dup=1; done
        [[ -n $dup ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    echo "== installing missing packages: ${missing[*]}"
    apt_install "${missing[@]}"
}

# apt_install PACKAGE...: one `apt-get update` per test run, then a quiet, non-interactive install
# without recommends. Fails loudly (and so fails the stage) when apt cannot install them.
apt_install() {
    local -a sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "!! need to install $* but this is not root and sudo is missing" >&2
            return 1
        fi
    fi
    if [[ -z $NEXERO_APT_UPDATED ]]; then
        if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq; then
            echo "!! apt-get update failed; cannot install: $*" >&2
            return 1
        fi
        NEXERO_APT_UPDATED=1
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        echo "!! apt-get install failed for: $*" >&2
        return 1
    fi
}
