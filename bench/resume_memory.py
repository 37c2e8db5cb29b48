"""Resume memory: the keys of an output file held as `WrittenKeys`, beside a set of strings.

    python bench/resume_memory.py                  # 10,000,000 written keys
    python bench/resume_memory.py --keys 1000000

Writes a JSON Lines output file of N result lines (the shape ``JsonlWriter`` writes, the
row index as key, as a run without ``--key`` has), then, each in a fresh child process:

- ``read only``: the checkpoint's own record reader over the file, keeping nothing (the
  floor: the interpreter, the imports, the parsing);
- ``WrittenKeys``: the resume path itself, ``prepare_output(path, "jsonl", "resume")``,
  whose ``done`` is what a resumed run's engine tests every row against;
- ``set of str``: the same reader into a Python set of the key strings (the code before).

Each child then tests ``--probes`` written keys (a hit: a row a resumed run skips;
`WrittenKeys` reads its record back to confirm it) and as many keys that are not written (a
miss: a row still to run), and reports the time per test. Peak RSS is the child's, from ``wait4``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, say, table, versions

_LINE = (
    '{{"key":{i},"index":{i},"output":{{"answer":"a short answer"}},'
    '"usage":{{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}},'
    '"error":null,"attempts":1,"latency_ms":21.5}}\n'
)


def write_output(path: str, keys: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        chunk = 100_000
        for start in range(0, keys, chunk):
            out.write("".join(_LINE.format(i=i) for i in range(start, min(keys, start + chunk))))


def child(kind: str, path: str, keys: int, probes: int) -> None:
    """Build the structure ``kind`` from ``path``, test ``probes`` hits and misses; print JSON."""
    from openai_compat.batch.checkpoint import _records, prepare_output

    started = time.perf_counter()
    nbytes = 0
    if kind == "read only":
        for _ in _records(path, "jsonl", ()):
            pass
        done: object = None
    elif kind == "WrittenKeys":
        checkpoint = prepare_output(path, "jsonl", "resume")
        done = checkpoint.done
        nbytes = checkpoint.done.nbytes
    else:
        strings = {r.key for r in _records(path, "jsonl", ()) if r.key is not None}
        nbytes = sys.getsizeof(strings) + sum(map(sys.getsizeof, strings))
        done = strings
    build_s = time.perf_counter() - started
    result = {"build_s": build_s, "nbytes": nbytes}
    if done is not None:
        # The probe keys are made as they are tested (a list of them would add to the peak
        # RSS); the time of making them alone is taken off.
        step = max(1, keys // probes)
        count = len(range(0, keys, step))
        for name, first in (("hit", 0), ("miss", keys * step)):
            t0 = time.perf_counter()
            for i in range(first, first + keys, step):
                str(i)
            making = time.perf_counter() - t0
            found = 0
            t0 = time.perf_counter()
            for i in range(first, first + keys, step):
                found += str(i) in done  # type: ignore[operator]
            result[f"{name}_us"] = (time.perf_counter() - t0 - making) / count * 1e6
            assert found == (count if name == "hit" else 0), (name, found)
    print(json.dumps(result))


def run_child(kind: str, path: str, keys: int, probes: int) -> tuple[dict[str, float], int]:
    """The child's report and its peak RSS in bytes (``wait4``'s ru_maxrss, KiB on Linux)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, path, str(keys), str(probes)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{kind}: child exited {proc.returncode}")
    return json.loads(out), usage.ru_maxrss * 1024


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, path, keys, probes = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        child(kind, path, keys, probes)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000_000, help="written keys")
    parser.add_argument("--probes", type=int, default=1_000_000, help="hits and misses tested")
    parser.add_argument("--rss-target-mb", type=float, default=300.0)
    args = parser.parse_args()
    say(f"resume memory: {args.keys:,} written keys; {versions()}; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.jsonl")
        t0 = time.perf_counter()
        write_output(path, args.keys)
        size = os.path.getsize(path)
        say(f"output file: {size / 1e6:,.0f} MB, written in {time.perf_counter() - t0:.1f} s")
        rows = []
        floor = 0
        verdicts = []
        for kind in ("read only", "WrittenKeys", "set of str"):
            report, rss = run_child(kind, path, args.keys, args.probes)
            if kind == "read only":
                floor = rss
            per_key = report["nbytes"] / args.keys
            rows.append(
                [
                    kind,
                    f"{rss / 1e6:,.0f}",
                    f"{(rss - floor) / args.keys:.1f}" if kind != "read only" else "-",
                    f"{per_key:.1f}" if report["nbytes"] else "-",
                    f"{report['build_s']:.1f}",
                    f"{report['hit_us']:.2f}" if "hit_us" in report else "-",
                    f"{report['miss_us']:.2f}" if "miss_us" in report else "-",
                ]
            )
            if kind == "WrittenKeys":
                verdicts.append(
                    f"  [{'PASS' if per_key <= 16 else 'MISS'}] {per_key:.1f} bytes a key "
                    "(target <= 16)"
                )
                verdicts.append(
                    f"  [{'PASS' if rss / 1e6 < args.rss_target_mb else 'MISS'}] peak RSS "
                    f"{rss / 1e6:,.0f} MB (target < {args.rss_target_mb:.0f} MB)"
                )
    say(
        table(
            [
                "structure",
                "peak RSS MB",
                "RSS above floor B/key",
                "own bytes/key",
                "build s",
                "hit us",
                "miss us",
            ],
            rows,
        )
    )
    for line in verdicts:
        say(line)


if __name__ == "__main__":
    main()
