"""Local infrastructure without Docker: the real Kafka broker and a MongoDB-wire store.

Used by `make up`, the test suite and the benchmark. Everything fetched or built is cached
under `var/tools/`; data and logs of a run go where the caller says.
"""
