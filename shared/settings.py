"""Settings shared by every service; each service subclasses with its own `env_prefix`.

Values come from environment variables and an optional `.env` file. The connection settings
use the contract's unprefixed names (`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URL`, `MONGODB_DATABASE`).
"""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import TopicLayout, Topics

DEV_AUTH_PEPPER = "development-only-auth-pepper"


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
    topic_replication_factor: int = Field(
        1, ge=1, validation_alias=AliasChoices("DMP_TOPIC_REPLICATION_FACTOR", "topic_replication_factor"),
        description="Copies of each partition the topics are created with (3 on a three-broker cluster).")
    topic_min_insync_replicas: int = Field(
        1, ge=1, validation_alias=AliasChoices("DMP_TOPIC_MIN_INSYNC_REPLICAS", "topic_min_insync_replicas"),
        description="Copies that must have a write before it is acknowledged (2 with three copies): "
                    "with fewer in sync, ingest answers 503 rather than a 202 one broker could lose.")
    store_timeout_s: float = Field(
        3.0, gt=0, validation_alias=AliasChoices("DMP_STORE_TIMEOUT_S", "store_timeout_s"),
        description="Longest the store operations of one HTTP request may take together; past it the "
                    "request answers 503 with Retry-After (a paused or unreachable store).")
    log_level: str = Field("INFO", validation_alias=AliasChoices("DMP_LOG_LEVEL", "log_level"))
    host: str = "127.0.0.1"
    port: int = 8000
    environment: str = Field("development", validation_alias=AliasChoices("DMP_ENVIRONMENT", "environment"),
                             description="Anything but `development` refuses placeholder secrets.")
    auth_pepper: SecretStr = Field(SecretStr(DEV_AUTH_PEPPER),
                                   validation_alias=AliasChoices("DMP_AUTH_PEPPER", "auth_pepper"),
                                   description="Secret that keys the stored hashes of API keys; the same on "
                                               "every service and the `dmp admin keys` command.")
    rate_limit_per_s: float = Field(50.0, ge=0, validation_alias=AliasChoices("DMP_RATE_LIMIT_PER_S",
                                                                                "rate_limit_per_s"),
                                    description="Requests per second per key (0 = no limit).")
    rate_limit_burst: int = Field(200, ge=1, validation_alias=AliasChoices("DMP_RATE_LIMIT_BURST",
                                                                             "rate_limit_burst"))
    opentelemetry: bool = Field(False, validation_alias=AliasChoices("DMP_OPENTELEMETRY", "opentelemetry"),
                                description="FastAPI's native OpenTelemetry spans, metrics and logs, for a "
                                            "process whose providers are configured (opentelemetry-instrument).")
    cors_origins: list[str] = Field(default_factory=list,
                                    validation_alias=AliasChoices("DMP_CORS_ORIGINS", "cors_origins"),
                                    description="Browser origins allowed to call the API (JSON list).")

    console_origins: list[str] = Field(["http://127.0.0.1:8002", "http://localhost:8002"],
                                       validation_alias=AliasChoices("DMP_CONSOLE_ORIGINS", "console_origins"),
                                       description="Origins the web console is served from (JSON list): they may "
                                                   "call every service with the console's session cookie.")
    session_ttl_s: float = Field(3600.0, gt=0, le=86400,
                                 validation_alias=AliasChoices("DMP_SESSION_TTL_S", "session_ttl_s"),
                                 description="How long a console session lasts after signing in.")

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_development(self) -> Self:
        if self.environment != "development":
            for name, value, placeholder in self.placeholder_secrets():
                if value == placeholder:
                    raise ValueError(f"{name} is still the development placeholder; set a long random secret")
        return self

    def placeholder_secrets(self) -> list[tuple[str, str, str]]:
        """(variable, value, placeholder) for each secret that must be set outside development."""
        return [("DMP_AUTH_PEPPER", self.auth_pepper.get_secret_value(), DEV_AUTH_PEPPER)]

    @property
    def topics(self) -> Topics:
        return Topics.under(self.topic_namespace)

    @property
    def topic_layout(self) -> TopicLayout:
        return TopicLayout(self.topic_partitions, self.topic_replication_factor, self.topic_min_insync_replicas)

    @model_validator(mode="after")
    def _min_insync_within_replicas(self) -> Self:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(f"DMP_TOPIC_MIN_INSYNC_REPLICAS ({self.topic_min_insync_replicas}) exceeds "
                             f"DMP_TOPIC_REPLICATION_FACTOR ({self.topic_replication_factor}): no write could succeed")
        return self
