#!/usr/bin/env bash
# Idempotent set-up: .venv/ with channeld and its dev tools, anvil and solc (npm) in .tools/.
# Fast when already done: each step is skipped when its stamp is newer than its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

ANVIL_VERSION=1.7.1
SOLC_VERSION=0.8.37
PY=${PYTHON:-python3}

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
if [[ ! -f .venv/.stamp || pyproject.toml -nt .venv/.stamp ]]; then
    echo "setup: installing channeld and dev tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch .venv/.stamp
fi

want="anvil@${ANVIL_VERSION} solc@${SOLC_VERSION}"
if [[ ! -f .tools/.stamp ]] || [[ "$(cat .tools/.stamp)" != "$want" ]]; then
    echo "setup: installing anvil ${ANVIL_VERSION} and solc ${SOLC_VERSION} into .tools/"
    mkdir -p .tools
    npm install --silent --no-audit --no-fund --prefix .tools \
        "@foundry-rs/anvil@${ANVIL_VERSION}" "solc@${SOLC_VERSION}" >/dev/null
    .tools/node_modules/.bin/anvil --version >/dev/null
    echo "$want" > .tools/.stamp
fi

# Raiden's compiled TokenNetwork, the gas reference (only its data files are read; never imported).
if ! ls .tools/raiden/raiden_contracts-0.50.2-*.whl >/dev/null 2>&1; then
    echo "setup: fetching raiden-contracts 0.50.2 (gas reference data) into .tools/raiden/"
    .venv/bin/python -m pip download -q --no-deps --only-binary :all: -d .tools/raiden raiden-contracts==0.50.2
fi
