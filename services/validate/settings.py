"""validate's settings: env prefix `VALIDATE_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ValidateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VALIDATE_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8001
    group_id: str = "dmp-validate"
    transactional_id: str = "dmp-validate-0"
    max_batch: int = 500
