"""The project's common package: envelope and events, topics, settings, adapters, health, the worker loop."""

from shared.envelope import (
    ErrorDetail,
    SubmissionCreate,
    SubmissionReceived,
    SubmissionRejected,
    SubmissionValidated,
    SubmissionWithdrawn,
    WithdrawalRequested,
    content_hash,
)
from shared.errors import DmpError, InfrastructureUnavailable
from shared.kafka import InMemoryPublisher, KafkaPublisher, Publisher
from shared.settings import ServiceSettings
from shared.topics import Topics

__all__ = [
    "DmpError",
    "ErrorDetail",
    "InMemoryPublisher",
    "InfrastructureUnavailable",
    "KafkaPublisher",
    "Publisher",
    "ServiceSettings",
    "SubmissionCreate",
    "SubmissionReceived",
    "SubmissionRejected",
    "SubmissionValidated",
    "SubmissionWithdrawn",
    "Topics",
    "WithdrawalRequested",
    "content_hash",
]
