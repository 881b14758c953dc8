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
    producer_start_timeout_s: float = Field(15.0, gt=0, description="Longest wait for the transactional producer "
                                                                    "to connect (at start and after a failure).")
    producer_close_timeout_s: float = Field(5.0, gt=0, description="Longest wait for a producer to deliver what it "
                                                                    "holds when it is closed.")
