#!/usr/bin/env bash
# Photograph the main pages into docs/screenshots/ (1280 and 390 px wide), from
# a throw-away database and workspace seeded with the demo and real runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export AGENTOS_VAR_DIR="$scratch" DJANGO_DEBUG=1 AGENTOS_EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend
unset DATABASE_URL REDIS_URL
"$PY" scripts/screenshots.py
