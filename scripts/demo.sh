#!/usr/bin/env bash
# `make demo`: the whole service on the embedded default (SQLite), from nothing to serving.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
export FINREC_DATABASE_URL="${FINREC_DATABASE_URL:-sqlite:///./var/finrec.db}"
export FINREC_ARTIFACT_DIR="${FINREC_ARTIFACT_DIR:-./var/artifacts}"
export OPENBLAS_NUM_THREADS=1
export FINREC_DOCS_ENABLED="${FINREC_DOCS_ENABLED:-true}"  # the demo shows /docs; production does not
DEMO_DIR="${DEMO_DIR:-var/demo}"
DEMO_CUSTOMERS="${DEMO_CUSTOMERS:-20000}"
DEMO_SEED="${DEMO_SEED:-7}"
HOST="${FINREC_HOST:-127.0.0.1}"
PORT="${FINREC_PORT:-8000}"
ALGORITHMS="${DEMO_ALGORITHMS:-popularity als bpr itemknn ease content lightfm fusion}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "migrating the database ($FINREC_DATABASE_URL)"
$BIN/finrec db upgrade

if [[ ! -f "$DEMO_DIR/interactions.csv" && ! -f "$DEMO_DIR/interactions.parquet" ]]; then
  step "generating a synthetic bank: $DEMO_CUSTOMERS customers, seed $DEMO_SEED"
  $BIN/finrec generate --customers "$DEMO_CUSTOMERS" --seed "$DEMO_SEED" --out "$DEMO_DIR"
fi

for kind in customers products interactions; do
  file=$(ls "$DEMO_DIR/$kind".* | head -n1)
  step "importing $kind from $file"
  $BIN/finrec import "$kind" "$file"
done

for algorithm in $ALGORITHMS; do
  step "training $algorithm"
  $BIN/finrec train --algorithm "$algorithm" --activate
done

step "registered models"
$BIN/finrec models list

step "precomputing tonight's lists for every customer (default strategy, k=20)"
$BIN/finrec precompute --k 20

if ! $BIN/finrec experiments show demo-offers >/dev/null 2>&1; then
  step "creating and starting an A/B experiment on the 'offers' placement: fusion vs ALS"
  $BIN/finrec experiments create demo-offers --placement offers --traffic 1.0 \
    --variant control:control:50:fusion --variant challenger:treatment:50:als \
    --salt demo-offers --description "fusion against ALS on the offers placement"
  $BIN/finrec experiments start demo-offers
fi

# Keys are shown once and stored hashed, so a rerun replaces the demo keys (revoking the old
# ones) instead of reusing them; the new pair is also written to var/demo-keys.env.
step "creating demo API keys (an admin key and a read-only key for the mobile app)"
ADMIN_KEY=$($BIN/finrec keys create --name demo-admin --scope admin --replace)
READ_KEY=$($BIN/finrec keys create --name demo-read --scope recommendations:read --replace)
mkdir -p var
(umask 077; printf 'ADMIN_KEY=%s\nREAD_KEY=%s\n' "$ADMIN_KEY" "$READ_KEY" > var/demo-keys.env)

mapfile -t SAMPLE < <($BIN/python - <<'PY'
import os
from sqlalchemy import text
from app.db.session import make_engine
engine = make_engine(os.environ["FINREC_DATABASE_URL"])
with engine.connect() as conn:
    rows = conn.execute(text(
        "SELECT customer_id FROM customers WHERE risk_class IS NOT NULL "
        "ORDER BY customer_id LIMIT 2")).scalars().all()
    product = conn.execute(text(
        "SELECT product_id FROM products WHERE status = 'active' ORDER BY product_id LIMIT 1"
    )).scalar_one()
print(rows[0]); print(rows[1]); print(product)
PY
)

BASE="http://$HOST:$PORT"
cat <<MSG

finrec is starting on $BASE — try, in another terminal (or `source var/demo-keys.env` for the two keys):

  READ_KEY=$READ_KEY
  ADMIN_KEY=$ADMIN_KEY

  curl -s $BASE/healthz
  curl -s $BASE/readyz
  curl -s -H "Authorization: Bearer \$READ_KEY" '$BASE/v1/customers/${SAMPLE[0]}/recommendations?k=5' | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$READ_KEY" '$BASE/v1/customers/${SAMPLE[1]}/recommendations?k=3&channel=app&explain=true' | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$READ_KEY" '$BASE/v1/customers/${SAMPLE[0]}/recommendations?k=5&placement=offers' | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$READ_KEY" $BASE/v1/experiments/demo-offers/assignment/${SAMPLE[0]}
  curl -s -H "Authorization: Bearer \$READ_KEY" '$BASE/v1/products/${SAMPLE[2]}/similar?k=5' | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$READ_KEY" $BASE/v1/customers/${SAMPLE[0]} | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$ADMIN_KEY" $BASE/v1/experiments/demo-offers/results | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$ADMIN_KEY" '$BASE/v1/models' | python3 -m json.tool
  curl -s -i $BASE/v1/models    # no key: 401 problem+json
  curl -s -i -H "Authorization: Bearer \$READ_KEY" $BASE/v1/models    # read key: 403
  open $BASE/docs for the interactive API documentation (Authorize with a key)

Press Ctrl-C to stop.
MSG

exec $BIN/finrec serve --host "$HOST" --port "$PORT"
