"""The committed JSON Schemas and AsyncAPI document match the models; examples validate against them."""

from __future__ import annotations

import json

from cli import contracts
from shared.envelope import SCHEMA_VERSIONS


def test_committed_contracts_match_the_models() -> None:
    drift = contracts.check()
    assert drift == [], f"schemas/ is out of date ({drift}); run `.venv/bin/dmp admin contracts write`"


def test_drift_is_detected(tmp_path) -> None:
    contracts.write(tmp_path)
    assert contracts.check(tmp_path) == []
    target = tmp_path / "submissions" / "seizure.v1.schema.json"
    target.write_text(target.read_text().replace('"country"', '"nation"', 1))
    assert contracts.check(tmp_path) == ["submissions/seizure.v1.schema.json"]


def test_every_type_and_version_has_a_schema_and_the_asyncapi_names_the_three_topics() -> None:
    files = contracts.build()
    for type_, versions in SCHEMA_VERSIONS.items():
        for version in versions:
            assert f"submissions/{type_}.v{version}.schema.json" in files
    document = json.loads(files["asyncapi.json"])
    assert document["asyncapi"].startswith("3.")
    assert {c["address"] for c in document["channels"].values()} == {
        "dmp.submissions.received.v1", "dmp.submissions.validated.v1", "dmp.submissions.rejected.v1"}
    for message in document["components"]["messages"].values():
        assert message["payload"]["$ref"] in files


def test_a_withdrawal_is_documented_with_a_cloudevents_type_of_its_own_on_the_validated_topic() -> None:
    document = json.loads(contracts.build()["asyncapi.json"])
    withdrawn = document["components"]["messages"]["SubmissionWithdrawn"]
    assert withdrawn["headers"]["properties"]["ce_type"]["const"] == "org.dmp.submission.withdrawn.v1"
    assert document["channels"]["validated"]["address"] == "dmp.submissions.validated.v1"
    assert "SubmissionWithdrawn" in document["channels"]["validated"]["messages"]
    assert "WithdrawalRequested" in document["channels"]["received"]["messages"]
    types = {m["headers"]["properties"]["ce_type"]["const"] for m in document["components"]["messages"].values()}
    assert len(types) == len(document["components"]["messages"]) == 5


def test_training_schema_is_the_officers_form_and_never_names_a_pseudonym() -> None:
    schema = contracts.build()["submissions/training.v1.schema.json"]
    assert "national_id" in schema and "full_name" in schema
    assert "pseudonym" not in schema


def test_ingest_and_validate_agree_on_types_and_versions() -> None:
    from services.validate.rules import LATEST, SUPPORTED

    assert {(t, v) for t, vs in SCHEMA_VERSIONS.items() for v in vs} == set(SUPPORTED)
    assert {t: vs[-1] for t, vs in SCHEMA_VERSIONS.items()} == LATEST
