#!/usr/bin/env bash
# The main job on the embedded default: ingest the seeds, pre-annotate them, push them to a local Doccano
# (started here on 127.0.0.1, SQLite), pull the labels back, then train and evaluate a small pipeline on the
# seed-gold corpus, and publish that corpus as a dataset. Outputs: corpora/demo/, models/demo/, dist/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
A=.venv/bin/annotate
OUT=corpora/demo
MODEL=models/demo
PORT=${ANNOTATE_DEMO_PORT:-8000}
export ANNOTATE_DOCCANO_USER=${ANNOTATE_DOCCANO_USER:-admin}
# without a password of yours, a random one for this run (the admin's password is reset to it at start;
# it stays in this process's environment, never on disk)
ANNOTATE_DOCCANO_PASSWORD=${ANNOTATE_DOCCANO_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
export ANNOTATE_DOCCANO_PASSWORD

step() { printf '\n== %s\n' "$*"; }

step "1. ingest seeds/ -> $OUT/articles.jsonl"
$A ingest seeds/ --out $OUT/articles.jsonl

step "2. pre-annotate with the shipped gazetteer -> $OUT/tasks.jsonl"
$A tasks $OUT/articles.jsonl --patterns --out $OUT/tasks.jsonl

step "3. start a local Doccano on 127.0.0.1:$PORT"
$A doccano serve --port "$PORT"
trap '$A doccano stop >/dev/null 2>&1 || true' EXIT

step "4. push the schema, the tasks and their suggestions to project 'demo'"
$A doccano push $OUT/tasks.jsonl --project demo

step "5. pull every annotator's labels back -> $OUT/labelled.jsonl"
$A doccano pull --project demo --out $OUT
$A stats $OUT/labelled.jsonl

step "6. how good were the gazetteer's suggestions? (pulled suggestions scored against seed-gold)"
$A evaluate --pred $OUT/labelled.jsonl --gold corpora/seed-gold/labelled.jsonl --out $OUT/patterns-eval --bootstrap 200 --json \
  | .venv/bin/python -c 'import json,sys; m=json.load(sys.stdin)["views"]["entities.exact"]["micro"]; print("gazetteer suggestions vs gold, entities exact: P=%.3f R=%.3f F1=%.3f" % (m["precision"], m["recall"], m["f1"]))'

step "7. spaCy DocBins from the seed-gold corpus (article-level split: train / dev)"
$A docbin corpora/seed-gold/labelled.jsonl --out $OUT/seed-gold --ratios 0.7,0.3,0

step "8. train NER + relations (a short run on CPU)"
$A train models/configs/ner-rel-cpu.cfg --output $MODEL \
  --paths.train $OUT/seed-gold/train.spacy --paths.dev $OUT/seed-gold/dev.spacy --training.max_steps=300

step "9. predict the dev articles (not trained on; used to pick model-best) and score them per label"
$A evaluate $MODEL/model-best $OUT/seed-gold/dev.jsonl --out $MODEL/eval --bootstrap 200

step "10. publish the seed-gold corpus as a Hugging Face dataset -> dist/seed-gold (Parquet + card; no upload)"
$A publish corpora/seed-gold/labelled.jsonl --out dist/seed-gold

step "done: Doccano stops now; outputs in $OUT/ and $MODEL/"
