#!/usr/bin/env bash
# Prepares commlib-py's real Python peers for the interop tests, idempotently.
#
# It creates a virtual environment with python3 and installs the pinned packages of
# requirements.txt into it. A stamp (a hash of its inputs) makes reruns return at once.
#
# The venv lives in $COMMLIB_VENV, or else ${CARGO_TARGET_DIR:-<repo>/target}/commlib-venv.
# On success the last two lines of standard output are `python=<path>` and `generated=<path>`
# (there is no generated code: the scripts' own directory).
#
# Exit codes: 0 ready; 2 no usable python3 with the venv module; 3 pip could not install the
# packages (offline package index, usually); 1 anything else.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${COMMLIB_VENV:-${CARGO_TARGET_DIR:-$repo/target}/commlib-venv}"
requirements="$here/requirements.txt"

log() { echo "setup.sh: $*" >&2; }

mkdir -p "$(dirname "$venv")"
# Several test processes may run this at once; one prepares, the others wait for it.
exec 9>"$venv.lock"
flock 9

stamp_file="$venv/.switchboard-stamp"
stamp="$(cat "$requirements" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"

report() {
    echo "python=$venv/bin/python"
    echo "generated=$here"
}

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" && -x "$venv/bin/python" ]]; then
    report
    exit 0
fi

rm -rf "$venv"
log "creating $venv"
if ! python3 -m venv "$venv" >&2; then
    log "\`python3 -m venv\` failed; is Python 3 with the venv module installed?"
    exit 2
fi
log "installing the pinned packages"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$requirements" >&2; then
    log "pip could not install $requirements; is the package index reachable?"
    exit 3
fi
if ! "$venv/bin/python" -c 'import commlib.node, commlib.transports.redis, commlib.transports.mqtt' >&2; then
    log "commlib-py does not import"
    exit 1
fi

echo "$stamp" >"$stamp_file"
report
