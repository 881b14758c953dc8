"""What the command line's commands share and `dmp --help` needs: exit codes, the submission types, options."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

EXIT_PROBLEMS = 1
EXIT_NOT_SENT = 3
MAX_BATCH = 500
"""Most submissions per `POST /v1/submissions/batch` the command line sends (ingest takes up to 1,000)."""


class SubmissionKind(StrEnum):
    seizure = "seizure"
    price = "price"
    financial_case = "financial_case"
    treatment_facility = "treatment_facility"
    training = "training"


IngestUrl = Annotated[str | None, typer.Option(help="ingest's base URL (default: DMP_INGEST_URL, then `dmp login`)")]
AggregateUrl = Annotated[str | None, typer.Option(
    help="aggregate's base URL (default: DMP_AGGREGATE_URL, then `dmp login`)")]
BatchSize = Annotated[int, typer.Option(envvar="DMP_BATCH_SIZE", min=1, max=MAX_BATCH,
                                        help="submissions per request")]
Retries = Annotated[int, typer.Option(envvar="DMP_SYNC_RETRIES", min=0,
                                      help="attempts after a failed one before giving up (backoff doubles)")]
NoSync = Annotated[bool, typer.Option("--no-sync", help="only queue; send later with `dmp sync`")]
