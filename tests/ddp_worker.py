"""Run by tests/test_distributed.py under torchrun: trains the runs listed in a JSON file, one after another, in
the same process group. Each entry: {"overrides": [...], "out": "...", "resume": false}."""

import json
import sys

import gankit

for job in json.loads(open(sys.argv[1]).read()):
    gankit.train(None, overrides=job["overrides"], out=job["out"], resume=job.get("resume", False))
