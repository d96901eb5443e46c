#!/usr/bin/env bash
# l16 as the README's "A sharper probe and sixteen latent actions" trains it (x3 tokenizer, 16-code LAM, x3 dynamics, probe p7)
set -euo pipefail
cd "$(dirname "$0")/../../.."; source .venv/bin/activate; export MUJOCO_GL=egl
D=out/quality/data; R=out/quality/l16/run
gen() { out=$1; shift; [ -f "$D/$out" ] || genie-robot data mujoco --steps 32 --size 64 --workers 2 --out "$D/$out" "$@"; }
stamp() { echo "=== $(date +%T) $*"; }
stamp data
gen mujoco.h5 --episodes 160 --seed 0
gen explore.h5 --episodes 64 --seed 2 --policy random
gen val32.h5 --episodes 32 --seed 3 --split val
gen planning.h5 --episodes 24 --seed 1 --split test
MIX="$D/mujoco.h5:2 $D/explore.h5:1"
stamp tokenizer; genie-robot train tokenizer --data $MIX --preset small --steps 7800 --sample-every 0 --ckpt-every 1950 --out $R
stamp lam; genie-robot train lam --data $MIX --preset small --num-actions 16 --steps 6000 --sample-every 0 --ckpt-every 1500 --out $R
stamp dynamics; genie-robot train dynamics --data $MIX --preset small --steps 10200 --sample-every 0 --ckpt-every 2550 --out $R
stamp adapter; genie-robot train adapter --data $D/mujoco.h5 --preset small --sample-every 0 --out $R
stamp probe7; gen probe7.h5 --episodes 320 --seed 7
stamp probe; genie-robot train probe --data $D/mujoco.h5 $D/explore.h5 $D/probe7.h5 --steps 4500 --out $R
stamp done
