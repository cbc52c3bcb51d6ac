"""What several suites share: processes under test, manifests, readers. Fixtures stay in the conftest.py files."""
