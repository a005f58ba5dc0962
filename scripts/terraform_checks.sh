#!/usr/bin/env bash
# Offline checks of the Terraform in terraform/:
#   1. `terraform fmt -check`, with the `terraform` CLI on PATH (not installed by
#      the project: without it this check is SKIPPED, said loudly, and fails when
#      TERRAFORM_REQUIRED=1);
#   2. checkov, from its own virtual environment (.tools/checkov-venv, created on
#      first use from PyPI, about 300 MB; tool environments live in .tools/, apart
#      from the local server's state in .cosma/), offline: no policy download, no
#      Bridgecrew mapping;
#   3. docs/deploy.md's service-account table is what scripts/iam_table.py
#      generates from the Terraform today, and terraform/README.md's settings
#      table what scripts/settings_table.py generates from Settings and the Terraform.
# Needs python3 (3.11) with venv and PyPI within reach on first use, and make's
# .venv (python-hcl2 and the project) for step 3.
# Exits non-zero if any of them fails. The invariants themselves are pytest
# tests in tests/terraform/.
set -uo pipefail
cd "$(dirname "$0")/.."

CHECKOV_SPEC="${CHECKOV_SPEC:-checkov==3.3.30}"
CHECKOV_VENV=".tools/checkov-venv"
status=0
skipped=()

step() { printf '\n== %s\n' "$*"; }
skip() {
    skipped+=("$1")
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    printf '!! SKIPPED: %s\n!! %s\n' "$1" "$2" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    if [ "${TERRAFORM_REQUIRED:-0}" = 1 ]; then
        status=1
    fi
}

step "terraform fmt"
if command -v terraform >/dev/null 2>&1; then
    # An absent CLI config file only produces a warning; keep the output clean.
    if ! TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform; then
        echo "terraform fmt: files above need \`terraform fmt -recursive terraform\`" >&2
        status=1
    else
        echo "ok"
    fi
else
    skip "terraform fmt" "terraform is not on PATH; install the Terraform CLI (1.x) to run it"
fi

step "checkov ($CHECKOV_SPEC)"
# checkov pins its own hcl2 module, which clashes with the python-hcl2 the
# tests use, so it lives in a virtual environment of its own.
stamp="$CHECKOV_VENV/.installed-$(printf '%s' "$CHECKOV_SPEC" | tr -c 'A-Za-z0-9.=' '_')"
if [ ! -f "$stamp" ]; then
    rm -rf "$CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV" \
        && "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "$CHECKOV_SPEC" \
        && touch "$stamp" \
        || { echo "checkov: could not install $CHECKOV_SPEC" >&2; exit 1; }
fi
# The environments call modules/stack, which calls the other modules; sync and
# the scheduler refer to each other's outputs there. checkov's variable
# renderer gives up on such a loop after RENDER_EDGES_DUPLICATE_ITER_COUNT
# rounds (default 4), too few at that depth: sync's inputs stay unrendered and
# its checks are silently not run. 8 renders them (checked below).
export BC_SKIP_MAPPING=TRUE CKV_NO_DOWNLOAD=TRUE RENDER_EDGES_DUPLICATE_ITER_COUNT=8
checkov() {
    "$CHECKOV_VENV/bin/checkov" --directory terraform --framework terraform \
        --skip-download --download-external-modules false "$@"
}
# Skips are inline `#checkov:skip=CKV_...:reason` comments next to the resource.
if ! checkov --compact --quiet; then
    status=1
fi
# A resource whose inputs checkov cannot render is checked by nothing, and says
# nothing: make sure every function of the stack got its ingress check.
functions=$(grep -c 'source *= *"../function"' terraform/modules/stack/main.tf)
rendered=$(checkov --check CKV_GCP_124 --output json 2>/dev/null | python3 -c '
import json, sys
reports = json.load(sys.stdin)
reports = reports if isinstance(reports, list) else [reports]
print(len({c["resource"] for r in reports for c in r["results"]["passed_checks"]}))
' || echo 0)
if [ "$rendered" != "$functions" ]; then
    echo "checkov: CKV_GCP_124 passed on $rendered function(s), expected $functions" >&2
    status=1
else
    echo "checkov rendered all $functions functions"
fi

step "generated tables: docs/deploy.md (service accounts), terraform/README.md (settings)"
if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ -x .venv/bin/python ]; then
    py=.venv/bin/python
else
    py=python3
fi
if ! "$py" -c "import hcl2" 2>/dev/null; then
    echo "$py has no python-hcl2; install the dev dependencies (make's .venv has them)" >&2
    status=1
else
    "$py" scripts/iam_table.py --check || status=1
    "$py" scripts/settings_table.py --check || status=1
fi

if [ "${#skipped[@]}" -gt 0 ]; then
    printf '\nterraform-check: %s SKIPPED (see above); everything else ' "${skipped[*]}" >&2
    [ "$status" = 0 ] && echo "passed" >&2 || echo "ran, with failures" >&2
fi
exit "$status"
