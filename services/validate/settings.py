"""validate's settings: env prefix `VALIDATE_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ValidateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VALIDATE_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8001
    group_id: str = "dmp-validate"
    transactional_id: str = "dmp-validate-0"
    max_batch: int = 500
    gather_ms: int = Field(100, ge=0, description="How long the broker may hold a fetch to gather a batch "
                                                  "(0: answer as soon as one event is there).")
    gather_bytes: int = Field(262_144, ge=1, description="A fetch is answered at once when this much has "
                                                         "arrived.")
    producer_start_timeout_s: float = Field(15.0, gt=0, description="Longest wait for the transactional producer "
                                                                    "to connect (at start and after a failure).")
    producer_close_timeout_s: float = Field(5.0, gt=0, description="Longest wait for a producer to deliver what it "
                                                                    "holds when it is closed, or for a failed "
                                                                    "transaction to abort.")
