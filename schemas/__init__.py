"""The published contracts as data: JSON Schemas of the envelope, the submission types and the events, and the
AsyncAPI document. Written by `dmp admin contracts write` from the models; ingest reads the submission types' schemas
to declare and check `data`."""
