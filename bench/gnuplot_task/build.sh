#!/usr/bin/env bash
# Rebuild the gnuplot task (issue 44's large corpus): the gnuplot 5.4 manual from Debian's gnuplot-doc package,
# imported with bench/gnuplot_task/questions.csv. Run from the repository root:
#   PYTHON=.venv/bin/python bash bench/gnuplot_task/build.sh TASKS_DIR      # makes TASKS_DIR/gnuplot
# GNUPLOT_DOC_VERSION= (empty) takes whatever version apt offers instead of the pinned one;
# GNUPLOT_DOC_DEB=path/to/gnuplot-doc_*.deb uses a .deb already downloaded (no network).
set -euo pipefail
tasks=${1:?usage: bash bench/gnuplot_task/build.sh TASKS_DIR}
here=bench/gnuplot_task
[ -f "$here/questions.csv" ] || { echo "run from the repository root" >&2; exit 2; }
python=${PYTHON:-python3}
version=${GNUPLOT_DOC_VERSION-5.4.4+dfsg1-2}
pdf_sha256=df68dd0613f043141512fc4436d17aaf96727d5a758d85233915ac5056a97206  # gnuplot.pdf in 5.4.4+dfsg1-2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${GNUPLOT_DOC_DEB:-}" ]; then
  cp "$GNUPLOT_DOC_DEB" "$work/"
else
  (cd "$work" && apt-get download "gnuplot-doc${version:+=$version}")
fi
dpkg-deb -x "$work"/gnuplot-doc_*.deb "$work/x"
mkdir "$work/docs"
cp "$work/x/usr/share/doc/gnuplot/gnuplot.pdf" "$work/docs/"
echo "$pdf_sha256  $work/docs/gnuplot.pdf" | sha256sum --check --status ||
  echo "warning: gnuplot.pdf differs from the one the questions were written for (5.4.4+dfsg1-2)" >&2

start=$(date +%s)
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" -m harness new-task gnuplot --tasks-dir "$tasks" \
  --docs "$work/docs" --questions "$here/questions.csv" --id-col id --doc-col doc --topic-col topic \
  --description "The gnuplot 5.4 manual (gnuplot.pdf, 311 pages) from Debian's gnuplot-doc package; 30 questions with verbatim answers spread over the whole manual."
echo "import: $(( $(date +%s) - start )) s"

# Every reference answer must still be a verbatim span of the converted manual (the contains metric needs it).
missing=0
while IFS=$'\t' read -r id answer; do
  grep -qF -- "$answer" "$tasks/gnuplot/docs/gnuplot.md" || { echo "not in the converted manual: $id '$answer'" >&2; missing=1; }
done < <("$python" -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1], newline="")): print(r["id"] + "\t" + r["answer"])' "$here/questions.csv")
[ "$missing" = 0 ]
echo "words: $(cat "$tasks"/gnuplot/docs/*.md | wc -w)"
