"""Settings shared by every service; each service subclasses with its own `env_prefix`.

Values come from environment variables and an optional `.env` file. The connection settings
use the contract's unprefixed names (`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URL`, `MONGODB_DATABASE`).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import Topics


class ServiceSettings(BaseSettings):
    """Connection and runtime settings every service needs."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"))
    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        validation_alias=AliasChoices("MONGODB_URL", "mongodb_url"))
    mongodb_database: str = Field("dmp", validation_alias=AliasChoices("MONGODB_DATABASE", "mongodb_database"))
    topic_namespace: str = Field("", validation_alias=AliasChoices("DMP_TOPIC_NAMESPACE", "topic_namespace"))
    topic_partitions: int = Field(6, ge=1, validation_alias=AliasChoices("DMP_TOPIC_PARTITIONS", "topic_partitions"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("DMP_LOG_LEVEL", "log_level"))
    host: str = "127.0.0.1"
    port: int = 8000

    @property
    def topics(self) -> Topics:
        return Topics.under(self.topic_namespace)
