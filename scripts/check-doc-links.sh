#!/usr/bin/env bash
# Checks that every relative link and every repository path named in the docs
# (docs/*.md, README.md, STYLE.md) exists in the checkout.
#
#   scripts/check-doc-links.sh               # prints what does not resolve; exit 1 if anything
#   scripts/check-doc-links.sh --under DIR   # also lists every reference that resolves under DIR
#
# A reference, outside fenced code blocks, is a markdown link target, or a
# code span that looks like a path: it has a file extension, or starts with a
# top-level folder of the repository (crates/…, docs/…). It must exist as named
# (from the repository root, or from the document for a link); else a bare
# file name (`catalog.rs`) or a partial path (`kafka/worker.rs`) must be the
# end of some file's path. Files are those git tracks or would track
# (untracked, not ignored). Build outputs (target/, node_modules), placeholders
# (<…>, *, …, NAME), URLs, absolute paths, and the files of other projects
# named in EXTERNAL are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "$@" <<'PY'
import os, re, subprocess, sys

under = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--under" else None
files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, text=True, check=True).stdout.split()
# Files of other projects that the docs name as such (event-ruler's and
# quamina's test data, tansu's source).
EXTERNAL = {"normalRulesWithOrWording.json", "perf-scenarios.json", "wwords.txt", "tansu-broker/src/broker.rs"}
tracked = set(files)
dirs = {os.path.dirname(f) for f in files}
for f in files:
    parts = f.split("/")
    for i in range(1, len(parts)):
        dirs.add("/".join(parts[:i]))
roots = {f.split("/")[0] for f in files if "/" in f}
docs = sorted(f for f in files if (f.startswith("docs/") and f.endswith(".md"))) + ["README.md", "STYLE.md"]
ext = re.compile(r"\.(rs|md|toml|ya?ml|json|wit|sh|py|js|ts|txt|lock|html|css)$")

def resolve(ref, base, link):
    """Files or folders this reference names ([] when none), or None when it is not a path."""
    ref = ref.split("#")[0] if link else ref
    if not link and any(c in ref for c in ":@#="):
        return None
    ref = ref.rstrip("/")
    if (not ref or ref in EXTERNAL or re.match(r"^[a-z]+://", ref) or ref.startswith(("/", "~", "$", "-"))
            or any(c in ref for c in "<>*…{}[] |")
            or "target/" in ref + "/" or "node_modules" in ref or re.fullmatch(r"\.\w+", ref)
            or any(re.fullmatch(r"[A-Z_]+", seg) for seg in ref.split("/"))):
        return None
    if not link and not (ext.search(ref) or ref.split("/")[0] in roots):
        return None
    joined = os.path.normpath(os.path.join(base, ref)) if link else os.path.normpath(ref)
    if joined in tracked or joined in dirs:
        return [joined]
    if link or ref.startswith("../"):
        return []
    suffix = "/" + ref
    return sorted({f for f in files if ("/" + f).endswith(suffix)} | {d for d in dirs if ("/" + d).endswith(suffix)})

missing = 0
for doc in docs:
    if not os.path.exists(doc):
        print(f"{doc}: the file itself is missing"); missing += 1; continue
    base = os.path.dirname(doc)
    in_fence = False
    for n, line in enumerate(open(doc, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        refs = [(m.group(1), True) for m in re.finditer(r"\]\(([^)\s]+)\)", line)]
        refs += [(m.group(1), False) for m in re.finditer(r"(?<!`)`([^`\s]+)`(?!`)", line)]
        for ref, link in refs:
            found = resolve(ref, base, link)
            if found is None:
                continue
            if not found:
                print(f"{doc}:{n}: {ref}: not in the repository"); missing += 1
            elif under and any(f == under or f.startswith(under.rstrip("/") + "/") for f in found):
                print(f"{doc}:{n}: {ref} -> {', '.join(found)}")
sys.exit(1 if missing else 0)
PY
