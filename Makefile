# EffYOLO: `make demo` fine-tunes the default detector (EfficientNet-Lite0 from ImageNet) on a generated dataset;
# `make test` runs the test suite; `make docs-check` runs every documented command. Each creates .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := data/shapes
DEMO_RUN := logs/demo
DEMO_SIZE := 224

.PHONY: demo test lint docs-check clean-demo

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_RUN)
	$(PY) synthetic_data.py --out-dir $(DEMO_DIR) --images 400 --seed 0
	$(PY) voc_annotation.py --voc-root $(DEMO_DIR) --classes $(DEMO_DIR)/classes.txt --out-dir $(DEMO_DIR)/lines
	$(PY) train.py --train $(DEMO_DIR)/lines/train.txt --val $(DEMO_DIR)/lines/val.txt \
		--classes $(DEMO_DIR)/classes.txt --input-size $(DEMO_SIZE) --epochs 20 --run-dir $(DEMO_RUN)
	$(PY) get_map.py --run-dir $(DEMO_RUN) --annotations $(DEMO_DIR)/lines/val.txt
	$(PY) predict.py image --run-dir $(DEMO_RUN) --input "$$(head -n 1 $(DEMO_DIR)/lines/val.txt | cut -d ' ' -f 1)" \
		--output $(DEMO_RUN)/prediction.png
	@$(PY) -c "import json; m = json.load(open('$(DEMO_RUN)/map/metrics.json')); print(f'demo: validation mAP@0.5 = {m[\"map50\"]:.3f}, mAP@[.5:.95] = {m[\"map50_95\"]:.3f}; annotated prediction: $(DEMO_RUN)/prediction.png')"

test: $(VENV)/.installed
	$(PY) -m pytest -n 3 --dist loadgroup

docs-check: $(VENV)/.installed
	$(PY) -m pytest -m docs_run -s tests/test_docs_run.py

lint: $(VENV)/.installed
	$(PY) -m ruff check .

clean-demo:
	rm -rf $(DEMO_DIR) $(DEMO_RUN)
