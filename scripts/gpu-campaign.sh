#!/usr/bin/env bash
# The whole GPU call of the supernet campaign (docs/gpu-campaign.md): check the GPU, copy the
# CIFAR-10 archives from the carried folder, run `nascsim supernet campaign` so that everything
# is written inside BUDGET seconds, and leave every file under $OUT (at most 4 files, no folders).
#
#   OUT=/some/dir BUDGET=500 bash scripts/gpu-campaign.sh [more campaign options]
#
# Environment (all optional except OUT):
#   BUDGET    seconds for the whole script, checks and copy included (default 500; give the
#             device call's timeout_s at least 60 s more)
#   DEVICE    torch device (default cuda; cpu for a dry run here)
#   DATA_SRC  folder holding cifar10-train.tar.gz and cifar10-test.tar.gz (default .gpu-data)
#   WORK      scratch folder for the copied archives and the decoded-image cache (default a new
#             folder under /tmp); nothing is written into the repository
#   PYTHON    interpreter (default python3)
# Exit code: the campaign's (0 done, 1 a lane failed or missed its deadline, 2 bad input),
# 3 no usable GPU, 4 no data.
set -uo pipefail

start=$(date +%s)
: "${OUT:?set OUT to the folder whose files come back}"
BUDGET="${BUDGET:-500}"
DEVICE="${DEVICE:-cuda}"
DATA_SRC="${DATA_SRC:-.gpu-data}"
PYTHON="${PYTHON:-python3}"
WORK="${WORK:-$(mktemp -d /tmp/nascsim-campaign.XXXXXX)}"
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"  # evaluation calls vary in size

campaign() {
echo "== gpu-campaign $(date -u +%FT%TZ): budget ${BUDGET} s, device ${DEVICE}, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# 1. the GPU (and torch, numpy, pyarrow: the campaign's imports), in a few seconds
if [[ "$DEVICE" == cuda* ]]; then
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader || { echo "no nvidia-smi"; return 3; }
fi
"$PYTHON" - "$DEVICE" <<'EOF' || return 3
import sys
import numpy, pyarrow, torch
dev = sys.argv[1]
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}")
if dev.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("CUDA is not available to torch")
    print(f"GPU {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
try:
    import polars  # noqa: F401
    print("polars present (the campaign does not use it)")
except ImportError:
    print("no polars (as expected: the campaign does not use it)")
EOF

# 2. the data: the carried archives, copied out of the repository
# (into a folder named cifar10: the dataset, and so the supernet ids, take its name)
mkdir -p "$WORK/cifar10"
ls "$DATA_SRC"/*.tar.gz >/dev/null 2>&1 && cp "$DATA_SRC"/*.tar.gz "$WORK/cifar10/" || { echo "no .tar.gz archives in $DATA_SRC"; return 4; }

# the commit of the code (the device's copy has no .git): written next to the archives when preparing
if [[ -f "$DATA_SRC/commit" ]]; then export NASCSIM_GIT_COMMIT="$(head -c 60 "$DATA_SRC/commit" | tr -cd '0-9a-f-')"; fi

# 3. the campaign, with what is left of the budget
left=$(( BUDGET - ($(date +%s) - start) - 2 ))
echo "== campaign with --budget-s ${left} (${BUDGET} s less $(( $(date +%s) - start + 2 )) s of checks)"
"$PYTHON" -m nascsim supernet campaign --space fbnet --data "$WORK/cifar10" --out "$OUT" --budget-s "$left" \
    --device "$DEVICE" --cache-dir "$WORK/cache" "$@"
rc=$?
ls -l "$OUT"
echo "== gpu-campaign exit ${rc} after $(( $(date +%s) - start )) s"
return $rc
}

mkdir -p "$OUT"
campaign "$@" 2>&1 | tee -a "$OUT/campaign.log"
exit "${PIPESTATUS[0]}"
