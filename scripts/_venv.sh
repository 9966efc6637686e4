# Sourced by scripts/up and scripts/test: make .venv and install genqueue into it (again only
# when pyproject.toml changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ensure_venv() {  # ensure_venv EXTRAS   e.g. "" or "[dev]"
    local extras="$1"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "genqueue needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
        echo "== .venv is incomplete (an interrupted creation?): making it again" >&2
        rm -rf .venv
    fi
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
    fi
    local stamp=".venv/.genqueue-installed${extras}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras}"
        touch "$stamp"
    fi
}

ensure_system_packages() {  # what the tests need from Debian: never a browser build download
    # chromium: the console's browser tests (Playwright drives it);
    # libfaketime: the multi-host suite's worker host whose clock runs ahead.
    local chromium="${GENQUEUE_TEST_CHROMIUM:-/usr/bin/chromium}"
    local faketime="/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    local missing=()
    [ -x "$chromium" ] || missing+=(chromium)
    [ -e "$faketime" ] || missing+=(libfaketime)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing ${missing[*]} (apt-get) for the browser and multi-host tests"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
    if [ ! -x "$chromium" ] || [ ! -e "$faketime" ]; then
        echo "still missing after apt-get: $chromium or $faketime; those tests would fail" >&2
        exit 1
    fi
}
