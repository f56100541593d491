"""Figure 4: import time of the DAG files, each in a fresh interpreter (``PYTHONPATH=plugins``), against
importing ``airflow.sdk`` alone; and which heavy modules (pandas, great_expectations) they pull in.

Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from scripts.bench_common import ROOT

HEAVY = ("pandas", "great_expectations", "pyarrow", "sqlalchemy")
PROBE = """
import importlib.util, json, sys, time
target = sys.argv[1]
started = time.perf_counter()
if target.endswith(".py"):
    spec = importlib.util.spec_from_file_location("dag_under_test", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    __import__(target)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def probe(target: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", PROBE, target], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per target (median)")
    args = parser.parse_args(argv)
    dags = sorted(str(p) for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
    probe("airflow.sdk")  # warm the file system cache and .pyc files
    for dag in dags:
        probe(dag)
    figures: dict = {"targets": {}}
    for target in ["airflow.sdk", *dags]:
        runs = [probe(target) for _ in range(args.repeat)]
        figures["targets"][os.path.basename(target)] = {
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "heavy_modules": sorted({m for r in runs for m in r["heavy"]})}
    sdk = figures["targets"]["airflow.sdk"]["median_seconds"]
    worst = max((v["median_seconds"], k) for k, v in figures["targets"].items() if k.endswith(".py"))
    figures.update({"sdk_seconds": sdk, "worst_dag": worst[1], "worst_dag_seconds": worst[0],
                    "ratio": worst[0] / sdk,
                    "dags_import_pandas_or_ge": sorted({m for k, v in figures["targets"].items() if k.endswith(".py")
                                                        for m in v["heavy_modules"]
                                                        if m in ("pandas", "great_expectations")})})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
