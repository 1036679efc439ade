#!/usr/bin/env bash
# The main job on the embedded default, on the diplomacy-defence corpus: ingest the raw articles, pre-annotate them
# with the shipped model, start a local Doccano (127.0.0.1, SQLite), push the project, let two annotators' work
# (the gold, and the independent second pass on the double-annotated articles) reach it through the annotation API,
# pull everything back and check it equals the gold, back up the database, measure agreement and adjudicate, train,
# evaluate and package a pipeline, publish the corpus, stop the server. Outputs: corpora/demo/, models/demo/, dist/ (git-ignored).
# DEMO_QUICK=1 (make demo-quick) trains for fewer steps.
set -euo pipefail
cd "$(dirname "$0")/.."
A=.venv/bin/annotate
PY=.venv/bin/python
CORPUS=corpora/diplomacy-defence
OUT=corpora/demo
MODEL=models/demo
SHIPPED=models/diplomacy-defence/model
PORT=${ANNOTATE_DEMO_PORT:-8000}
STEPS=$([ "${DEMO_QUICK:-0}" = 1 ] && echo 300 || echo 1200)
export ANNOTATE_DOCCANO_USER=${ANNOTATE_DOCCANO_USER:-admin}
# without a password of yours, a random one for this run (the admin's password is reset to it at start;
# it stays in this process's environment, never on disk); the same for the two annotators
ANNOTATE_DOCCANO_PASSWORD=${ANNOTATE_DOCCANO_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
export ANNOTATE_DOCCANO_PASSWORD
ADMIN_PASSWORD=$ANNOTATE_DOCCANO_PASSWORD
A1_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
A2_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
STARTED=$(date +%s)

step() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*"; }
rm -rf "$OUT" "$MODEL"
mkdir -p "$OUT"

step "1. ingest the raw articles in seeds/ -> $OUT/articles.jsonl"
$A ingest seeds/ --out $OUT/articles.jsonl

step "2. pre-annotate them with the shipped model ($SHIPPED) -> $OUT/tasks.jsonl"
$A tasks $OUT/articles.jsonl --model $SHIPPED --out $OUT/tasks.jsonl

step "3. start a local Doccano on 127.0.0.1:$PORT"
$A doccano serve --port "$PORT"
trap '$A doccano stop >/dev/null 2>&1 || true' EXIT

step "4. accounts for two annotators (passwords generated for this run, kept in this process only)"
ANNOTATE_NEW_PASSWORD=$A1_PASSWORD $A doccano users add annotator1 --json >/dev/null
ANNOTATE_NEW_PASSWORD=$A2_PASSWORD $A doccano users add annotator2 --json >/dev/null
echo "annotator1 and annotator2 created"

step "5. push the project: schema, generated guidelines, the pre-annotated tasks; both annotators as members"
$A doccano push $OUT/tasks.jsonl --project diplomacy-defence --member annotator1:annotator --member annotator2:annotator

step "6. the annotators' work reaches Doccano through its annotation API: annotator1 the gold, annotator2 the second pass"
$PY - "$CORPUS" "$OUT" <<'EOF'
import sys
from annotate.records import read_docs, write_jsonl
corpus, out = sys.argv[1], sys.argv[2]
second = [d for d in read_docs(f"{corpus}/double/labelled.jsonl") if d.annotator == "annotator2"]
write_jsonl(f"{out}/annotator2.jsonl", second)
print(f"annotator2: {len(second)} records of the second pass")
EOF
ANNOTATE_DOCCANO_USER=annotator1 ANNOTATE_DOCCANO_PASSWORD=$A1_PASSWORD $A doccano label $CORPUS/labelled.jsonl --project diplomacy-defence
ANNOTATE_DOCCANO_USER=annotator2 ANNOTATE_DOCCANO_PASSWORD=$A2_PASSWORD $A doccano label $OUT/annotator2.jsonl --project diplomacy-defence

step "7. pull every annotator's labels back -> $OUT/labelled.jsonl, and check annotator1's pull equals the gold"
ANNOTATE_DOCCANO_PASSWORD=$ADMIN_PASSWORD $A doccano pull --project diplomacy-defence --out $OUT
$PY - "$CORPUS" "$OUT" <<'EOF'
import sys
from dataclasses import replace
from annotate.records import read_docs, write_jsonl
corpus, out = sys.argv[1], sys.argv[2]
gold = {d.id: d.to_dict() for d in read_docs(f"{corpus}/labelled.jsonl")}
pulled = list(read_docs(f"{out}/labelled.jsonl"))
mine = {d.id: replace(d, annotator="gold").to_dict() for d in pulled if d.annotator == "annotator1"}
same = sum(mine.get(i) == g for i, g in gold.items())
print(f"annotator1's pull equals the gold in {same} of {len(gold)} records (ids, offsets, labels, relation attributes)")
if same != len(gold):
    sys.exit("pull differs from the gold")
people = [d for d in pulled if d.annotator in ("annotator1", "annotator2")]
write_jsonl(f"{out}/annotators.jsonl", people)
print(f"{len(people)} annotator records -> {out}/annotators.jsonl (the admin's records are the model's suggestions)")
EOF

step "8. back up Doccano's database while it runs (SQLite online backup, checked manifest) -> $OUT/doccano-backup.tar.gz"
$A doccano backup --out $OUT/doccano-backup.tar.gz

step "9. agreement between the two annotators (on the articles both labelled) -> $OUT/agreement.json"
$A agreement $OUT/annotators.jsonl --out $OUT/agreement.json

step "10. adjudicate (annotator1 wins ties) -> $OUT/gold.jsonl; every disagreement -> $OUT/gold.review.jsonl"
$A adjudicate $OUT/annotators.jsonl --out $OUT/gold.jsonl --prefer annotator1

step "11. spaCy DocBins of the gold: article-level hash split 0.8/0.1/0.1 -> $OUT/bins"
$A docbin $OUT/gold.jsonl --out $OUT/bins --ratios 0.8,0.1,0.1

step "12. train NER + relations on en_core_web_md ($STEPS steps on CPU; dev picks the checkpoint and the thresholds)"
$A train models/configs/ner-rel-md.cfg --base en_core_web_md --output $MODEL \
  --paths.train $OUT/bins/train.spacy --paths.dev $OUT/bins/dev.spacy --paths.tune $OUT/bins/dev.spacy \
  --training.max_steps=$STEPS --training.eval_frequency=200

step "13. evaluate on the test split (never seen in training or selection), per label, with plots -> $MODEL/eval"
$A evaluate $MODEL/model-best $OUT/bins/test.jsonl --out $MODEL/eval --bootstrap 500

step "14. package the trained model as a wheel with its Hub model card -> dist/en_diplomacy_defence_demo-0.1.0/"
$A package $MODEL/model-best --name en_diplomacy_defence_demo --version 0.1.0 --out dist/

step "15. publish the corpus as a Hugging Face dataset folder -> dist/diplomacy-defence (Parquet + card; no upload)"
$A publish $CORPUS/labelled.jsonl --out dist/diplomacy-defence --name diplomacy-defence

step "done in $(( $(date +%s) - STARTED )) s: Doccano stops now; outputs in $OUT/, $MODEL/, dist/en_diplomacy_defence_demo-0.1.0/ and dist/diplomacy-defence/"
