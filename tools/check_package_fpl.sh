#!/bin/sh
# Loads our FHIR packages (R4 and R5) with the FHIR Package Loader (fhir-package-loader on npm, the
# package tooling behind SUSHI) and lists what it indexed: a check, with another implementation's
# package reader, that the package layout, package.json and .index.json are usable by standard tools.
# Needs node and npm (installs fhir-package-loader into a temporary folder). Run from the repository:
#   sh tools/check_package_fpl.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VERSION=$("$ROOT/.venv/bin/python" -c "import fhir_plugin; print(fhir_plugin.__version__)")
(cd "$WORK" && npm install --silent --no-audit --no-fund fhir-package-loader@2.2.4 >/dev/null)
for fhir in r4 r5; do
    "$ROOT/.venv/bin/fhir-plugin" package --fhir-version "$fhir" --out "$WORK/dist" >/dev/null
    name="fhir-plugin.terminology.$fhir"
    mkdir -p "$WORK/cache/$name#$VERSION"
    tar xzf "$WORK/dist/$name-$VERSION.tgz" -C "$WORK/cache/$name#$VERSION"
    (cd "$WORK" && npx fpl install "$name#$VERSION" -c "$WORK/cache" -e >"$WORK/fpl.log" 2>&1) || { cat "$WORK/fpl.log"; exit 1; }
    grep "Loaded $name" "$WORK/fpl.log"
    python3 - "$WORK/FPL.sqlite" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "select resourceType, url, version from resource order by resourceType, url").fetchall()
for row in rows:
    print("  %s %s|%s" % row)
PY
    rm -f "$WORK/FPL.sqlite"
done
