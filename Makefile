.PHONY: install test export docs-preview readme
install:
	pip install -e ".[dev]"
export:
	nbdev_export && nbdev_clean && python tools/make_readme.py
test:
	nbdev_test --n_workers 2 --timing && python -m pytest -q
docs-preview:
	python tools/docs_preview.py
readme:
	python tools/make_readme.py
