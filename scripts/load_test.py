#!/usr/bin/env python3
"""Load test for `hone serve`: throughput and latency at several client concurrencies.

Loopback only, bounded in requests and time, Python standard library only. Each level runs C client
threads that each send --requests chat completions back to back (or stop at --max-seconds), with
prompts of equal token length so concurrent requests can share a batch. Prints one row per level:
requests, completion tokens, wall time, tokens/s, requests/s, p50 / p99 latency, mean batch size
(from /metrics).

Example (a ~100M random LLaDA shape, char tokenizer of the tiny parity checkpoint):
  hone serve --model tests/fixtures/parity/llada-tiny --random-config llada-100m --device cpu \
      --port 8321 --max-batch 16 --max-queue 64 &
  python3 scripts/load_test.py --base-url http://127.0.0.1:8321/v1 --model llada-tiny \
      --concurrency 1,4,16 --requests 4 --max-tokens 32 --block-length 32 --tokens-per-step 4
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=4, help="requests per client per level (max 64)")
    parser.add_argument("--max-seconds", type=float, default=300, help="per level; clients stop starting requests after it")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--tokens-per-step", type=int, default=None, help="fixed tokens per step (random weights are never confident)")
    parser.add_argument("--cache", default=None, choices=["none", "prefix", "dual"])
    parser.add_argument("--warmup", type=int, default=1, help="requests before measuring")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.base_url)
    if url.scheme != "http" or url.hostname not in LOOPBACK:
        parser.error("--base-url must be http:// on loopback (127.0.0.1, localhost, ::1)")
    if not 1 <= args.requests <= 64:
        parser.error("--requests must be between 1 and 64")
    levels = [int(c) for c in args.concurrency.split(",")]
    if any(c < 1 or c > 64 for c in levels):
        parser.error("each concurrency must be between 1 and 64")
    args.levels = levels
    args.host, args.port, args.path = url.hostname, url.port or 80, url.path.rstrip("/")
    return args


def request(args, method, path, body=None):
    connection = http.client.HTTPConnection(args.host, args.port, timeout=600)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def chat(args, client, index):
    # Equal-length prompts: the same canvas shape lets the engine batch them in one forward.
    body = {
        "model": args.model,
        "messages": [{"role": "user", "content": f"Write function number {client:03d}-{index:03d}."}],
        "max_tokens": args.max_tokens,
        "block_length": args.block_length,
        "seed": client * 1000 + index,
    }
    if args.tokens_per_step:
        body["tokens_per_step"] = args.tokens_per_step
    if args.cache:
        body["cache"] = args.cache
    started = time.perf_counter()
    status, data = request(args, "POST", f"{args.path}/chat/completions", body)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {data[:300]!r}")
    return elapsed, json.loads(data)["usage"]["completion_tokens"]


def batch_stats(args):
    _, data = request(args, "GET", "/metrics")
    values = {}
    for line in data.decode().splitlines():
        for name in ("hone_batch_size_sum", "hone_batch_size_count", "hone_forward_passes_total"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    return values


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_level(args, clients):
    latencies, tokens, errors = [], [], []
    lock = threading.Lock()
    deadline = time.perf_counter() + args.max_seconds

    def client(number):
        for index in range(args.requests):
            if time.perf_counter() > deadline:
                return
            try:
                elapsed, count = chat(args, number, index)
            except Exception as error:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(error))
                return
            with lock:
                latencies.append(elapsed)
                tokens.append(count)

    before = batch_stats(args)
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    after = batch_stats(args)
    steps = after.get("hone_batch_size_count", 0) - before.get("hone_batch_size_count", 0)
    sequences = after.get("hone_batch_size_sum", 0) - before.get("hone_batch_size_sum", 0)
    forwards = after.get("hone_forward_passes_total", 0) - before.get("hone_forward_passes_total", 0)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors[:3],
        "completion_tokens": sum(tokens),
        "wall_seconds": round(wall, 3),
        "tokens_per_second": round(sum(tokens) / wall, 2) if wall else 0,
        "requests_per_second": round(len(latencies) / wall, 3) if wall else 0,
        "p50_seconds": round(statistics.median(latencies), 3) if latencies else None,
        "p99_seconds": round(percentile(latencies, 0.99), 3) if latencies else None,
        "mean_active_per_step": round(sequences / steps, 2) if steps else None,
        "forward_passes": int(forwards),
        "sequences_per_forward": round(sequences / forwards, 2) if forwards else None,
    }


def main():
    args = parse_args()
    for index in range(args.warmup):
        chat(args, 999, index)
    results = [run_level(args, clients) for clients in args.levels]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        header = f"{'clients':>7} {'reqs':>5} {'tokens':>7} {'wall s':>8} {'tok/s':>8} {'req/s':>7} {'p50 s':>7} {'p99 s':>7} {'batch':>6} {'seq/fwd':>7}"
        print(header)
        for r in results:
            print(
                f"{r['clients']:>7} {r['requests']:>5} {r['completion_tokens']:>7} {r['wall_seconds']:>8} "
                f"{r['tokens_per_second']:>8} {r['requests_per_second']:>7} {r['p50_seconds']!s:>7} "
                f"{r['p99_seconds']!s:>7} {r['mean_active_per_step']!s:>6} {r['sequences_per_forward']!s:>7}"
            )
            for error in r["errors"]:
                print(f"  error: {error}", file=sys.stderr)
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
