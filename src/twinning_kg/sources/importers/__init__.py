"""Importers: outside data (Wikidata crawl, contributor CSV, WDQS JSON) into our model.

Each format module only *reads* its input into an `ImportBatch` (`model.py`); `merge.py`
reconciles a batch with the curated data and turns it into one named graph; `release.import_pipeline`
validates and writes the release. Keeping the three steps apart lets every format share
the same reconciliation rules ("curated wins where both speak") and the same checks.
"""
