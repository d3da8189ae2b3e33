#!/usr/bin/env bash
# On a machine with CUDA GPUs: run a small study through hydra/launcher=local and check that every run ran on
# CUDA, on the GPU the launcher handed it, and that runs sharing a GPU never overlapped in time. Then the two
# stacked-training measurements on CUDA (docs/stacking.md; target >= 50x the sequential loop for the default MLP):
# the loop's member-steps/s against the solo loop (bench/stacked.py) and a 64-run study end to end
# (bench/stacked_study.py). STACKED=0 skips them.
#   bash bench/gpu_check.sh [n_runs]     (prints each run's GPU and a verdict; exit 1 if a check fails)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-8}
export WANDB_MODE=offline WANDB_SILENT=true WANDB_ERROR_REPORTING=false
out=$(mktemp -d)
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
seeds=$(seq -s, 0 $((runs - 1)))
python3 -m ablate -m "seed=$seeds" steps=3000 device=cuda tracker=local tracker.progress=off \
  hydra/launcher=local "hydra.sweep.dir=$out/study" | tail -n 3
python3 - "$out/study" <<'PY'
import json, sys
from datetime import datetime
from pathlib import Path

records = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*/result.json"))]
ok = True
spans = {}
for r in records:
    p = r["provenance"]
    gpu = p.get("cuda_visible_devices")
    start, end = (datetime.fromisoformat(r[k]).timestamp() for k in ("started_at", "ended_at"))
    spans.setdefault(gpu, []).append((start, end))
    print(f"{r['run_dir'].rsplit('/', 1)[-1]:>10}: status {r['status']}, device {p['device']} ({p['device_name']}), "
          f"CUDA_VISIBLE_DEVICES={gpu}, {r['wall_time_s']:.1f} s")
    ok &= r["status"] == "completed" and p["device"].startswith("cuda") and gpu is not None
for gpu, s in spans.items():  # timestamps have 1 s resolution: overlaps shorter than that are not visible
    s.sort()
    overlaps = sum(b[0] < a[1] - 1 for a, b in zip(s, s[1:]))
    print(f"GPU {gpu}: {len(s)} runs, {overlaps} overlapping")
    ok &= overlaps == 0
print("gpu check:", "PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
if [ "${STACKED:-1}" != 0 ]; then
  python3 bench/stacked.py --device cuda --steps 1000 --repeats 1 --members 1 16 64 256
  python3 bench/stacked_study.py --device cuda --steps 1000 --seeds 16
fi
