#!/usr/bin/env bash
# Device run: the base preset, 2 minutes a stage, on the carried stores (made here; no MuJoCo rendering there).
set -o pipefail
export PYTHONUNBUFFERED=1 MUJOCO_GL=disable
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site devrun/whl/*.whl || exit 1
export PYTHONPATH=$PWD/devrun/site:/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $OUT/gpu.txt
python3 -c "import torch, h5py, mujoco, hdf5plugin, einops, safetensors, imageio, matplotlib, tqdm; print('torch', torch.__version__, torch.cuda.is_available(), 'h5py', h5py.__version__)" 2>&1 | grep -v "Cannot initialize" | tee -a $OUT/gpu.txt
start=$(date +%s)
timeout 520 python3 benchmarks/quality.py --preset base --budgets 8 --minutes "${MINUTES:-2}" --device cuda --no-fvd --out devrun/base 2>&1 \
  | tr '\r' '\n' | grep -v "step/s\|ep/s\|it/s\|Cannot initialize" | tee $OUT/quality.log | grep -v "^ *$" | tail -40
echo "quality.py: $(( $(date +%s) - start )) s"
cp devrun/base/quality.md devrun/base/quality.json $OUT/ 2>/dev/null
tar czf $OUT/results.tgz devrun/base/train.json devrun/base/x8/report devrun/base/x8/run/logs/*/metrics.csv devrun/base/x8/run/*/config.json devrun/base/x8/run/*/trainer_state.json 2>/dev/null
ls -la $OUT
