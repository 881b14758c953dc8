"""aggregate's settings: env prefix `AGGREGATE_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AggregateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATE_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8002
    group_id: str = "dmp-aggregate"
    max_batch: int = 1000
