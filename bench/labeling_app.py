"""Submit latency of the annotation app under concurrent annotators.

Starts the real server (uvicorn, one process) in a subprocess on a temporary DuckDB store with
`annotators x submits_each` tasks, then runs one thread per annotator, each doing GET /api/next +
POST /api/submit through the JSON API (httpx, its own Bearer token) until its queue is done.
Prints the median and p95 submit latency (ms) and the submits/s over the whole run; every submit is
one committed DuckDB transaction (the store is opened and closed per request).

Run: .venv/bin/python bench/labeling_app.py [--annotators 20] [--submits-each 25]"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seed(store, n_pairs: int) -> list[str]:
    import pyarrow as pa

    prompts = [{"prompt_id": f"q{i}", "source": "bench", "category": "math", "prompt": f"What is {i} + 1?",
                "meta": None, "split": "train"} for i in range(n_pairs)]
    candidates = [{"candidate_id": f"c{i}{s}", "prompt_id": f"q{i}", "model_version": "m",
                   "generation_key": "g", "sample_index": k, "response": f"The answer is {i + k}.",
                   "finished": True, "num_tokens": 4} for i in range(n_pairs) for k, s in enumerate("ab")]
    pairs = [{"pair_id": f"p{i}", "prompt_id": f"q{i}", "candidate_a": f"c{i}a", "candidate_b": f"c{i}b",
              "generation_key": "g"} for i in range(n_pairs)]
    store.upsert("prompts", pa.Table.from_pylist(prompts))
    store.upsert("candidates", pa.Table.from_pylist(candidates))
    store.upsert("pairs", pa.Table.from_pylist(pairs))
    return [p["pair_id"] for p in pairs]


def bench_app(annotators: int = 20, submits_each: int = 25) -> dict:
    """Run the bench; returns latencies (ms), throughput and counts."""
    import httpx

    from prefpipe.annotate.annotation import add_annotator, enqueue
    from prefpipe.store import Store

    with tempfile.TemporaryDirectory(prefix="labeling-bench-") as tmp:
        store = Store(Path(tmp) / "store.duckdb")
        pair_ids = _seed(store, annotators * submits_each)
        names = [f"ann{i:02d}" for i in range(annotators)]
        tokens = {name: add_annotator(store, name) for name in names}
        enqueue(store, pair_ids, names, overlap=1, gold={}, gold_every=0, seed=0)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve = ("import sys; from prefpipe.annotate.app.server import serve; "
                 "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning')")
        server = subprocess.Popen(
            [sys.executable, "-c", serve, str(store.path), str(port)], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the annotation server did not start")
                time.sleep(0.2)
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            start = threading.Barrier(annotators + 1)

            def annotate(name: str) -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[name]}"},
                                  timeout=60) as client:
                    start.wait()
                    while True:
                        task = client.get("/api/next").json()["task"]
                        if task is None:
                            return
                        t0 = time.perf_counter()
                        body = {"task_id": task["task_id"], "choice": "first"}
                        response = client.post("/api/submit", json=body)
                        elapsed = (time.perf_counter() - t0) * 1000
                        with lock:
                            if response.status_code == 200:
                                latencies.append(elapsed)
                            else:
                                errors.append(f"{response.status_code} {response.text[:200]}")
                                return

            threads = [threading.Thread(target=annotate, args=(n,)) for n in names]
            for thread in threads:
                thread.start()
            start.wait()
            t0 = time.perf_counter()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - t0
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        stored = store.count("labels")
    latencies.sort()
    return {"annotators": annotators, "submits": len(latencies), "labels_stored": stored,
            "errors": errors[:5],
            "median_ms": statistics.median(latencies) if latencies else None,
            "p95_ms": latencies[max(0, int(round(0.95 * len(latencies))) - 1)] if latencies else None,
            "submits_per_s": len(latencies) / wall if wall else None, "wall_s": wall,
            "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--submits-each", type=int, default=25)
    args = parser.parse_args()
    result = bench_app(args.annotators, args.submits_each)
    print(f"{result['annotators']} annotators, {result['submits']} submits ({result['labels_stored']} labels "
          f"stored): submit latency median {result['median_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms; "
          f"{result['submits_per_s']:.1f} submits/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
