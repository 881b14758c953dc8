"""ingest's settings: env prefix `INGEST_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8000
    max_body_bytes: int = Field(256 * 1024, gt=0, le=900 * 1024,
                                description="Largest accepted body (Kafka allows 1 MiB).")
    publish_timeout_s: float = Field(10.0, gt=0, description="How long to wait for the broker before answering 503.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    status_base_url: str = Field("http://127.0.0.1:8002", description="Public URL of aggregate, for status links.")
