#!/usr/bin/env python3
"""Benchmark `hone context` on real fixes (not a CI test).

Instances are built at run time from the history of the repositories given on the command line:
for each non-merge commit whose subject says it fixes something, the task is the commit message,
the answer is the set of source files it changed (tests, docs, changelogs and config excluded),
and the tree is the commit's parent. For every instance the script checks out the parent, runs each
`hone` binary given with --hone (label=path) and a plain BM25 over the repository's source files,
and reports top-1/5/10 recall (an instance counts when any answer file is in the top k) and the
median time of `hone context`.

    scripts/context-bench.py --hone before=/path/hone-old --hone after=target/release/hone \\
        --per-repo 12 /tmp/repos/flask /tmp/repos/ripgrep ...

A held-out slice: `--skip 12 --per-repo 12` takes the next twelve instances of each repository.

The repositories are modified (checked out at each parent, detached): pass clones made for this.
"""

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import time
from collections import Counter

SOURCE_EXTENSIONS = {
    "py", "rs", "go", "js", "mjs", "cjs", "jsx", "ts", "tsx", "java", "kt", "c", "h", "cc",
    "cpp", "hpp", "rb", "php", "cs", "scala", "swift",
}
FIX_SUBJECT = re.compile(r"\b(fix(es|ed)?|bug|crash|error|wrong|incorrect|regression|fail(s|ing|ure)?|broken|panic)\b", re.I)
TRAILER = re.compile(r"^(Signed-off-by|Co-authored-by|Reviewed-by|Change-Id|Cc):", re.I)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def extension(path):
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def is_test(path):
    lower = path.lower()
    parts = lower.split("/")
    name = parts[-1]
    stem = name.split(".")[0]
    return (
        any(part in ("test", "tests", "testing", "__tests__", "testdata", "spec", "benches", "fixtures") for part in parts[:-1])
        or stem.startswith("test_") or stem.endswith("_test") or stem.endswith("_tests")
        or stem == "conftest" or ".test." in name or ".spec." in name
        or (name.endswith(".java") and stem.endswith("Test"))
    )


def is_answer_file(path):
    lower = path.lower()
    if is_test(path) or extension(path) not in SOURCE_EXTENSIONS:
        return False
    return not any(part in ("docs", "doc", "examples", "example", "vendor") for part in lower.split("/")[:-1])


def instances(repo, per_repo, scan, skip=0):
    # The history is read from the commit the clone had when first benchmarked (kept in a ref),
    # since the runs leave the clone checked out at some parent.
    try:
        git(repo, "rev-parse", "--verify", "-q", "refs/bench/start")
    except subprocess.CalledProcessError:
        git(repo, "update-ref", "refs/bench/start", "HEAD")
    log = git(repo, "log", "--no-merges", f"-n{scan}", "--format=%H%x00%P%x00%B%x1e", "refs/bench/start")
    found = []
    for record in log.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        commit, parents, message = record.split("\x00", 2)
        parents = parents.split()
        if len(parents) != 1:
            continue
        subject = message.strip().splitlines()[0] if message.strip() else ""
        if not FIX_SUBJECT.search(subject):
            continue
        changed = [line for line in git(repo, "diff", "--name-only", parents[0], commit).splitlines() if line]
        answer = [path for path in changed if is_answer_file(path)]
        if not answer or len(answer) > 3:
            continue
        task = "\n".join(line for line in message.strip().splitlines() if not TRAILER.match(line)).strip()
        if len(task) < 20:
            continue
        if skip > 0:
            skip -= 1
            continue
        found.append({"repo": repo, "commit": commit, "parent": parents[0], "task": task, "answer": answer})
        if len(found) >= per_repo:
            break
    return found


TOKEN = re.compile(r"[A-Za-z0-9_]+")
STOP = {"the", "and", "for", "that", "this", "with", "from", "into", "when", "not", "are", "was", "fix", "its", "but", "can", "all", "has", "have", "of", "to", "in", "is", "it", "an", "on", "be", "or", "if", "so", "a"}


def terms(text):
    out = []
    for word in TOKEN.findall(text):
        if len(word) < 2 or len(word) > 64:
            continue
        out.append(word.lower())
        parts = [part for part in re.split(r"_|(?<=[a-z])(?=[A-Z])", word) if len(part) >= 2]
        if len(parts) > 1:
            out.extend(part.lower() for part in parts)
    return [term for term in out if term not in STOP]


def bm25_rank(repo, task, top=10, k1=1.2, b=0.75):
    files = [path for path in git(repo, "ls-files").splitlines() if extension(path) in SOURCE_EXTENSIONS]
    query = set(terms(task))
    docs = []
    for path in files:
        try:
            with open(f"{repo}/{path}", encoding="utf-8", errors="replace") as handle:
                text = handle.read(256 * 1024)
        except OSError:
            continue
        words = terms(text) + terms(path)
        counts = Counter(word for word in words if word in query)
        docs.append((path, counts, len(words)))
    n = len(docs)
    average = sum(length for _, _, length in docs) / max(n, 1)
    frequency = Counter(term for _, counts, _ in docs for term in counts)
    scored = []
    for path, counts, length in docs:
        score = 0.0
        for term, tf in counts.items():
            idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / max(average, 1)))
        if score > 0:
            scored.append((score, path))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [path for _, path in scored[:top]]


def hone_rank(binary, repo, task, top=10):
    start = time.perf_counter()
    result = subprocess.run([binary, "context", "--json", "--top", str(top), task], cwd=repo, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(f"hone failed in {repo}: {result.stderr.strip()[:300]}", file=sys.stderr)
        return [], elapsed
    return [file["path"] for file in json.loads(result.stdout)["files"]], elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+", help="git clones to build instances from (they get checked out)")
    parser.add_argument("--hone", action="append", default=[], help="label=path of a hone binary (repeatable)")
    parser.add_argument("--per-repo", type=int, default=12)
    parser.add_argument("--skip", type=int, default=0,
                        help="skip the newest N instances per repository (a held-out slice: --skip 12 after tuning on --per-repo 12)")
    parser.add_argument("--scan", type=int, default=3000, help="commits of history to scan per repository")
    parser.add_argument("--details", help="write per-instance results as JSON lines here")
    args = parser.parse_args()
    binaries = [entry.split("=", 1) for entry in args.hone]
    cases = []
    for repo in args.repos:
        found = instances(repo, args.per_repo, args.scan, args.skip)
        print(f"{repo}: {len(found)} instances", file=sys.stderr)
        cases.extend(found)
    rankers = ["bm25-source"] + [label for label, _ in binaries]
    hits = {name: {1: 0, 5: 0, 10: 0} for name in rankers}
    times = {label: [] for label, _ in binaries}
    details = open(args.details, "w") if args.details else None
    for case in cases:
        repo = case["repo"]
        git(repo, "checkout", "-q", "-f", "--detach", case["parent"])
        git(repo, "clean", "-q", "-fdx")
        rankings = {"bm25-source": bm25_rank(repo, case["task"])}
        for label, binary in binaries:
            rankings[label], elapsed = hone_rank(binary, repo, case["task"])
            times[label].append(elapsed)
        for name, ranking in rankings.items():
            for k in (1, 5, 10):
                if any(path in case["answer"] for path in ranking[:k]):
                    hits[name][k] += 1
        if details:
            details.write(json.dumps({**case, "rankings": rankings}) + "\n")
    total = len(cases)
    repos = len({case["repo"] for case in cases})
    print(f"\n{total} instances from {repos} repositories\n")
    print("| ranking | top 1 | top 5 | top 10 | median time |")
    print("|---|---|---|---|---|")
    for name in rankers:
        row = [f"{100 * hits[name][k] / max(total, 1):.0f}%" for k in (1, 5, 10)]
        median = f"{1000 * statistics.median(times[name]):.0f} ms" if times.get(name) else "-"
        print(f"| {name} | {' | '.join(row)} | {median} |")


if __name__ == "__main__":
    main()
