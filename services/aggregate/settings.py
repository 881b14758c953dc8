"""aggregate's settings: env prefix `AGGREGATE_` for its own, shared names for connections."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AggregateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATE_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = 8002
    group_id: str = Field("dmp-aggregate", description="Consumer group of generation 0; generation N uses "
                                                       "`<group_id>-g<N>`.")
    max_batch: int = 1000
    rebuild_batch: int = Field(10_000, ge=1, description=(
        "Most events a rebuild applies as one batch. A rebuilt generation is read by nobody until it is swapped "
        "in, so its batches need not be small: the records and view documents that many events change are "
        "written once per batch."))
    rebuild_cache: int = Field(50_000, ge=0, description=(
        "Submission records a rebuild keeps in memory after writing them (and four times as many view "
        "documents), so that their later events need no read of the store."))
    fetch_wait_ms: int = Field(50, ge=1, le=500, description=(
        "Longest the broker may hold one of aggregate's fetches while it has nothing to return (Kafka's "
        "fetch.max.wait.ms, 500 by default). A fetch holding only partitions whose news is a committed "
        "transaction of validate's was seen answered only when this ran out, not at the commit, and the "
        "consumer sends no other fetch meanwhile, so a long wait stalls the views."))
    generation_poll_s: float = Field(3.0, gt=0, description="How often to check which generation of the views "
                                                            "is live (a swap is followed within this time).")
    console_ingest_url: str = Field("http://127.0.0.1:8000", description=(
        "Where the console sends submissions (ingest's public URL); empty when a reverse proxy serves ingest's "
        "write routes on the console's own origin (docs/console.md)."))
    console_validate_url: str = Field("http://127.0.0.1:8001", description=(
        "Where the console's operator page reads validate's /health and /metrics (a URL or a path prefix)."))
    console_ingest_health_url: str | None = Field(None, description=(
        "Where the operator page reads ingest's /health and /metrics, if not at `console_ingest_url`."))
