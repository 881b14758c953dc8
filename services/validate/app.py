"""validate's composition root: the consumer loop plus health and metrics over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.validate.settings import ValidateSettings
from services.validate.worker import ValidateWorker
from shared.access import install_cors
from shared.docs import install_docs
from shared.health import MetricsMiddleware, health_router, install_error_handler
from shared.service import FatalHandler, app_options, run


def create_app(worker: ValidateWorker) -> FastAPI:
    """The health/metrics app; its lifespan starts and drains `worker`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    app = FastAPI(title="DMP validate", version="0.1.0", lifespan=lifespan, **app_options(worker.settings),
                  description="Validates received submissions; serves health and metrics only.")
    app.add_middleware(MetricsMiddleware, service="validate")
    install_error_handler(app)
    install_docs(app)
    install_cors(app, worker.settings)  # the console's operator page reads /health and /metrics

    async def partitions_assigned() -> bool:
        return worker.assigned()

    app.include_router(health_router(lambda: {"broker": worker.broker_ok, "partitions": partitions_assigned},
                                     loops=lambda: [worker.heartbeat]))
    return app


def main() -> None:
    settings = ValidateSettings()

    def build(on_fatal: FatalHandler) -> FastAPI:
        return create_app(ValidateWorker(settings, on_fatal=on_fatal))

    run("validate", settings, build)


if __name__ == "__main__":
    main()
