"""Public server throughput against the ceiling of our stack, in one run on this machine.

1. loads ../shared/bench/dataset.json into SQLite with `balrog db load`;
2. starts `balrog serve` (waitress, one process) and a constant-body falcon app on waitress
   (bench/ceiling_app.py), each pinned to CPU 0 with taskset; wrk is pinned to CPU 1;
3. drives each with wrk (keep-alive connections, the URL list walked by shared/tools/urls.lua);
4. prints req/s, p50, p99, the ratio ours/ceiling, resident memory, and checks every answer is a 200.

Configurations: response cache off, cache on, and cache off with the rules table grown to
100k rules (to show the per-request cost does not follow the table size).

    .venv/bin/python bench/public_bench.py [--duration 10] [--connections 8] [--threads 8]

Needs `wrk` and `taskset` (Debian: apt-get install wrk util-linux).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/__lbheartbeat__")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(port)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def check_all_200(port: int, urls: list[str]) -> int:
    bad = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for url in urls:
        conn.putrequest("GET", url, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        bad += response.status != 200
    conn.close()
    return bad


def parse_wrk(output: str) -> dict:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99": ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0,
        "errors": sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)),
    }


def run_wrk(port: int, urls_file: Path, duration: int, connections: int) -> dict:
    env = dict(os.environ, WRK_URLS=str(urls_file))
    base = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", "--latency", "-s",
            str(SHARED / "tools" / "urls.lua"), f"http://127.0.0.1:{port}"]
    subprocess.run(base[:5] + ["-d2s"] + base[5:], env=env, check=True, capture_output=True)  # warm-up
    out = subprocess.run(base[:5] + [f"-d{duration}s"] + base[5:], env=env, check=True, capture_output=True,
                         text=True).stdout
    return parse_wrk(out)


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", "0", *cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def grow_rules(dataset: dict, target: int) -> dict:
    """Clone the never-winning rules onto partner/test channels until the table has ``target`` rules."""
    grown = json.loads(json.dumps(dataset))
    base = [r for r in dataset["rules"] if r["rule_id"] > 21]
    next_id = max(r["rule_id"] for r in dataset["rules"]) + 1
    i = 0
    while len(grown["rules"]) < target:
        i += 1
        for rule in base:
            if len(grown["rules"]) >= target:
                break
            clone = dict(rule, rule_id=next_id)
            clone.pop("alias", None)
            channel = rule.get("channel") or "release"
            clone["channel"] = f"{channel.rstrip('*')}-cck-partner{i}" + ("*" if channel.endswith("*") else "")
            grown["rules"].append(clone)
            next_id += 1
    return grown


def measure(label: str, db: str, extra_env: dict, args, urls_file: Path, urls: list[str]) -> dict:
    port = free_port()
    env = dict(os.environ, BALROG_ACCESS_LOG="false", BALROG_LOAD_DEMO_DATA="false", BALROG_LOG_FORMAT="text",
               BALROG_THREADS=str(args.threads), **extra_env)
    proc = start([str(Path(PYTHON).with_name("balrog")), "serve", "--db", db, "--port", str(port)], env)
    try:
        wait_up(port)
        bad = check_all_200(port, urls)
        result = run_wrk(port, urls_file, args.duration, args.connections)
        result.update(label=label, rss=rss_mb(proc.pid), not_200=bad)
        return result
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--big-rules", type=int, default=100_000)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install wrk util-linux)")
    urls_file = SHARED / "bench" / "urls.txt"
    urls = [u for u in urls_file.read_text().splitlines() if u]
    work = Path(tempfile.mkdtemp(prefix="balrog-bench-"))
    balrog = str(Path(PYTHON).with_name("balrog"))
    db = f"sqlite:///{work}/bench.db"
    subprocess.run([balrog, "db", "load", str(SHARED / "bench" / "dataset.json"), "--db", db], check=True,
                   capture_output=True)
    big_file = work / "dataset-big.json"
    big_file.write_text(json.dumps(grow_rules(json.loads((SHARED / "bench" / "dataset.json").read_text()),
                                              args.big_rules)))
    big_db = f"sqlite:///{work}/bench-big.db"
    subprocess.run([balrog, "db", "load", str(big_file), "--db", big_db], check=True, capture_output=True)

    port = free_port()
    ceiling_proc = start([PYTHON, str(ROOT / "bench" / "ceiling_app.py"), "--port", str(port), "--threads",
                          str(args.threads)], dict(os.environ))
    try:
        wait_up(port)
        ceiling = run_wrk(port, urls_file, args.duration, args.connections)
        ceiling.update(label="ceiling (constant body)", rss=rss_mb(ceiling_proc.pid), not_200=0)
    finally:
        ceiling_proc.terminate()
        ceiling_proc.wait()

    results = [
        ceiling,
        measure("balrog-engine, cache off", db, {"BALROG_RESPONSE_CACHE_SIZE": "0"}, args, urls_file, urls),
        measure("balrog-engine, cache on", db, {}, args, urls_file, urls),
        measure(f"balrog-engine, cache off, {args.big_rules} rules", big_db, {"BALROG_RESPONSE_CACHE_SIZE": "0"},
                args, urls_file, urls),
    ]
    print(f"{'configuration':<40} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'RSS MB':>7} {'non-200':>7}")
    for r in results:
        print(f"{r['label']:<40} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
              f"{r['rps'] / ceiling['rps']:>6.2f} {r['rss']:>7.1f} {r['non2xx'] + r['not_200'] + r['errors']:>7}")
    off, on, big = results[1], results[2], results[3]
    print()
    print(f"cache off: {off['rps'] / ceiling['rps']:.0%} of ceiling (target >= 50%)")
    print(f"cache on:  {on['rps'] / ceiling['rps']:.0%} of ceiling (target >= 85%)")
    print(f"p99 vs ceiling: off {off['p99'] / ceiling['p99']:.2f}x, on {on['p99'] / ceiling['p99']:.2f}x (target <= 1.5x)")
    print(f"RSS with this dataset: {off['rss']:.0f} MB cache off, {on['rss']:.0f} MB cache on (target <= 100 MB)")
    print(f"1k -> {args.big_rules} rules: {big['rps'] / off['rps'] - 1:+.1%} req/s (target >= -10%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
