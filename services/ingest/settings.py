"""ingest's settings: env prefix `INGEST_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8000
    max_body_bytes: int = Field(256 * 1024, gt=0, le=900 * 1024,
                                description="Largest accepted body (Kafka allows 1 MiB).")
    publish_timeout_s: float = Field(10.0, gt=0, description="Longest wait for the broker before answering 503: "
                                                             "bounds metadata waits, the produce request and the ack.")
    broker_probe_interval_s: float = Field(1.0, gt=0, description="How often the broker is checked; while it fails, "
                                                                  "submissions get 503 at once.")
    producer_recreate_after_s: float = Field(15.0, gt=0, description="Replace a producer that has not delivered for "
                                                                     "this long although the broker answers again.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    status_base_url: str = Field("http://127.0.0.1:8002", description="Public URL of aggregate, for status links.")
    max_batch_items: int = Field(1000, ge=1, le=1000, description="Most submissions in one batch request.")
    max_batch_bytes: int = Field(8 * 1024 * 1024, gt=0, description="Largest accepted batch body.")
    pseudonym_key: SecretStr = Field(SecretStr(DEV_PSEUDONYM_KEY),
                                     description="Secret keying training participants' pseudonyms; never change "
                                                 "it once data exists, or the same person gets a new pseudonym.")

    def placeholder_secrets(self) -> list[tuple[str, str, str]]:
        return [*super().placeholder_secrets(),
                ("INGEST_PSEUDONYM_KEY", self.pseudonym_key.get_secret_value(), DEV_PSEUDONYM_KEY)]
