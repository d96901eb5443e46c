#!/usr/bin/env bash
# Exploratory record, not part of the package; run from the repository root after l16 (out/quality/l16/run) exists.
# Is "imagined objects do not move" a failure of the objective or of fitting? The small dynamics, trained from scratch
# for 20 CPU minutes (every setting the recipe's; l16's tokenizer and LAM) on 16, 64 and 256 scripted-push episodes,
# then object_one_step.py on its first 16 training episodes and on val32.h5; then 64 episodes for 40 minutes (steps or
# capacity?). Logs: push_episodes_N.log, push_episodes_64_40min.log.
set -euo pipefail
source .venv/bin/activate; export MUJOCO_GL=egl
D=out/quality/data
declare -A SEED=([16]=21 [64]=84 [256]=276)  # the seeds of the logged runs

train_and_read() {  # episodes, minutes, run name, log
  local N=$1 MINUTES=$2 R=out/quality/$3/run
  mkdir -p $R; cp -r out/quality/l16/run/tokenizer out/quality/l16/run/lam $R/
  [ -f $D/push$N.h5 ] || genie-robot data mujoco --steps 32 --size 64 --workers 2 --episodes $N --seed ${SEED[$N]} --policy push --out $D/push$N.h5
  {
    # the step cap and checkpoint cadence of the logged runs; the budget sets the steps trained
    genie-robot train dynamics --data $D/push$N.h5 --preset small --steps $((MINUTES * 1000)) --minutes $MINUTES --sample-every 0 \
      --ckpt-every $((MINUTES * 100)) --out $R 2>&1 \
      | tr '\r' '\n' | grep "^dynamics: step"
    echo "--- one step, the first 16 training episodes"; python docs/results/planning_push/object_one_step.py $R $D/push$N.h5 16
    echo "--- one step, val32.h5"; python docs/results/planning_push/object_one_step.py $R $D/val32.h5
  } | tee docs/results/planning_push/$4
}

for N in 16 64 256; do train_and_read $N 20 push$N push_episodes_$N.log; done
train_and_read 64 40 push64_40 push_episodes_64_40min.log
