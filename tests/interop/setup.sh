#!/usr/bin/env bash
# Prepares StingerIPC's real Python peers for the interop tests, idempotently.
#
# It creates a Python 3.12 virtual environment, installs the pinned packages of
# requirements.txt into it, and generates StingerIPC's Python package from interop_probe.yaml
# into <venv>/generated/. A stamp (a hash of its inputs) makes reruns return at once.
#
# The venv lives in $STINGER_VENV, or else ${CARGO_TARGET_DIR:-<repo>/target}/stinger-venv.
# On success the last two lines of standard output are `python=<path>` and `generated=<path>`
# (the directory to put on PYTHONPATH).
#
# Exit codes: 0 ready; 2 no Python 3.12 found; 3 pip could not install the packages (offline
# package index, usually); 1 anything else (generation failed, the generated code does not import).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STINGER_VENV:-${CARGO_TARGET_DIR:-$repo/target}/stinger-venv}"
interface="$here/interop_probe.yaml"
requirements="$here/requirements.txt"

log() { echo "setup.sh: $*" >&2; }

mkdir -p "$(dirname "$venv")"
# Several test processes may run this at once; one prepares, the others wait for it.
exec 9>"$venv.lock"
flock 9

stamp_file="$venv/.switchboard-stamp"
stamp="$(cat "$requirements" "$interface" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"

report() {
    echo "python=$venv/bin/python"
    echo "generated=$venv/generated/src"
}

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" && -x "$venv/bin/python" ]]; then
    report
    exit 0
fi

# Finds a Python that is at least 3.12: python3.12 on PATH, then pyenv's 3.12.1, then python3.
# Prints the command as `env` arguments.
find_python() {
    local candidate
    for candidate in "python3.12" "PYENV_VERSION=3.12.1 python3" "python3"; do
        # shellcheck disable=SC2086 # The candidate is split into env's arguments on purpose.
        if env $candidate -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
            >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c \
    'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    if ! python="$(find_python)"; then
        log "Python 3.12 or newer was not found (tried python3.12, PYENV_VERSION=3.12.1 python3 and python3)."
        log "stinger-ipc 0.9.7.post1 needs it: install Python 3.12 (for example \`pyenv install 3.12.1\`)."
        exit 2
    fi
    log "creating $venv with $python"
    rm -rf "$venv"
    # shellcheck disable=SC2086 # $python may carry a PYENV_VERSION= prefix on purpose.
    if ! env $python -m venv "$venv" >&2; then
        log "\`$python -m venv\` failed; is the venv module installed (Debian: python3.12-venv)?"
        exit 2
    fi
fi

log "installing the pinned packages"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$requirements" >&2; then
    log "pip could not install $requirements; is the package index reachable?"
    exit 3
fi

log "generating StingerIPC's Python package from $interface"
rm -rf "$venv/generated"
if ! "$venv/bin/stinger-ipc" generate "$interface" "$venv/generated" --language python \
    >"$venv/generate.log" 2>&1; then
    cat "$venv/generate.log" >&2
    log "stinger-ipc generate failed"
    exit 1
fi
if ! PYTHONPATH="$venv/generated/src" "$venv/bin/python" -c \
    'import interopprobeipc.server, interopprobeipc.client' >&2; then
    log "the generated package does not import"
    exit 1
fi

echo "$stamp" >"$stamp_file"
report
