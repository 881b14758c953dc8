"""Training participants' identity never leaves ingest: identifier and name become a keyed pseudonym.

The pseudonym is HMAC-SHA256 over the participant's country and normalised identifier, keyed by a
secret only ingest holds: the same person in two courses gets the same pseudonym, and nobody
without the key can recompute or reverse it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Any

from shared.envelope import ErrorDetail

_SEPARATORS = re.compile(r"[\s\-./]+")
PII_FIELDS = ("national_id", "full_name")


def normalise_identifier(value: str) -> str:
    """`ab-123 456` and `AB123456` are the same document number."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def pseudonym(key: bytes, country: str, national_id: str) -> str:
    message = f"{country.strip().upper()}:{normalise_identifier(national_id)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def pseudonymise_training(data: dict[str, Any], key: bytes) -> tuple[dict[str, Any], list[ErrorDetail]]:
    """The data with `participant.pseudonym` in place of identifier and name, or why that is impossible.

    Identifier and name are removed in every case, so they cannot reach a topic even in a rejection.
    """
    participant = data.get("participant")
    if not isinstance(participant, dict):
        return data, [ErrorDetail(loc=["body", "data", "participant"], type="missing" if participant is None
                                  else "dict_type", msg="is required: an object with national_id, full_name, "
                                                        "agency, country, gender and role")]
    national_id = participant.get("national_id")
    cleaned = {k: v for k, v in participant.items() if k not in PII_FIELDS and k != "pseudonym"}
    errors: list[ErrorDetail] = []
    if not isinstance(national_id, str) or not normalise_identifier(national_id):
        errors.append(ErrorDetail(loc=["body", "data", "participant", "national_id"], type="missing",
                                  msg="is required (national identity or passport number); it is never stored, "
                                      "only a keyed pseudonym of it"))
    elif len(national_id) > 64:
        errors.append(ErrorDetail(loc=["body", "data", "participant", "national_id"], type="string_too_long",
                                  msg="must be at most 64 characters"))
    else:
        country = participant.get("country")
        cleaned["pseudonym"] = pseudonym(key, country if isinstance(country, str) else "", national_id)
    return {**data, "participant": cleaned}, errors
