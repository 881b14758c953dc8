"""The views analysts read: tables (JSON or CSV pages), the seizure map (GeoJSON) and the fact sheet."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from services.aggregate.answers import Answers, views_state
from services.aggregate.paging import (
    CURSOR,
    PAGE_MAX,
    RepositoryDep,
    all_of,
    bad_query,
    csv_response,
    cursor_bytes,
    encode_cursor,
    page_of,
    range_filter,
)
from services.aggregate.report import (
    ARQ_CSV_COLUMNS,
    ArqExport,
    FactSheet,
    FeatureCollection,
    FinancialRow,
    PriceRow,
    Repeat,
    RouteRow,
    SeizureRow,
    TrainingRow,
    arq_csv_rows,
    arq_export,
    feature,
    financial_row,
    price_row,
    repeats_among,
    route_row,
    seizure_row,
    training_rows,
    training_summary,
    treatment_summary,
)
from services.aggregate.repository import Repository
from shared.access import allow
from shared.audit import AuditLog
from shared.audit import entry as audit_entry
from shared.envelope import utcnow
from shared.problems import KEYED, problems
from shared.reference import CaseType, Market, Route
from shared.store import Document


async def audit_exports(request: Request) -> None:
    """Record who exported what: every CSV page and every export is an audit entry."""
    if request.query_params.get("format") != "csv" and not request.url.path.startswith("/v1/exports/"):
        return
    principal = request.state.principal
    log: AuditLog = request.app.state.audit
    await log.record([audit_entry(uuid.uuid4().hex, utcnow(), principal.key_id, "exported", request.url.path,
                                  query=str(request.query_params))])


router = APIRouter(tags=["views"], dependencies=[Depends(allow("analyst")), Depends(audit_exports)],
                   responses=problems(*KEYED, 422, 503))

Country = Annotated[str | None, Query(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3")]
Year = Annotated[int | None, Query(ge=1990, le=2100)]
Drug = Annotated[str | None, Query(pattern="^[a-z_]{1,40}$", description="A drug code, e.g. `heroin`")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]
Cursor = Annotated[str | None, Query(pattern=CURSOR, max_length=400,
                                     description="The `next` value of the previous page.")]
Format = Annotated[Literal["json", "csv"], Query(alias="format", description="`csv`: text/csv, one page, "
                                                 "the next page's cursor in `X-Next-Cursor` and `Link`.")]
ExportFormat = Annotated[Literal["json", "csv"], Query(alias="format", description="`csv`: the whole export as one "
                                                     "text/csv file with a `section` column.")]
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
DAY = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
"""A calendar date's shape; the parameter's `format: date` says the rest (no 30 February)."""
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`"}}


async def get_answers(request: Request) -> Answers:
    """The answers kept by this process (answers.py)."""
    answers: Answers = request.app.state.answers
    return answers


AnswersDep = Annotated[Answers, Depends(get_answers)]


async def kept(answers: Answers, repository: Repository, request: tuple[Hashable, ...],
               compute: Callable[[], Awaitable[BaseModel]]) -> Response:
    """The JSON answer to `request`: kept from an earlier read if no validated event was applied since."""
    writes = repository.view_writes  # both before the views are read: see answers.py
    state = views_state(repository.generation, writes, await repository.load_progress())

    async def body() -> bytes:
        return (await compute()).model_dump_json().encode()

    return Response(await answers.answer(request, state, body), media_type="application/json")


def _filters(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


class Page(BaseModel):
    next: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


@dataclass(frozen=True)
class Table:
    """A table view: its name, how a document becomes a row, the row's model and the JSON page's."""

    view: str
    row: Callable[[Document], BaseModel]
    model: type[BaseModel]
    page: type[Page]


async def table_page(request: Request, repository: Repository, answers: Answers, table: Table,
                     filters: dict[str, Any], cursor: str | None, limit: int, format_: str) -> Response:
    """One page of a table view: CSV (each page an audited export, answered afresh), or JSON kept until a view
    changes, since dashboards read the same pages again and again."""

    async def rows() -> tuple[list[BaseModel], str | None]:
        docs, next_cursor = await page_of(repository, table.view, filters, cursor, limit)
        return [table.row(d) for d in docs], next_cursor

    if format_ == "csv":
        items, next_cursor = await rows()
        return csv_response(request, items, table.model, next_cursor, table.view)

    async def page() -> BaseModel:
        items, next_cursor = await rows()
        return table.page(items=items, next=next_cursor)

    key = (table.view, orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), limit, cursor)
    return await kept(answers, repository, key, page)


class SeizurePage(Page):
    items: list[SeizureRow]


class RoutePage(Page):
    items: list[RouteRow]


class PricePage(Page):
    items: list[PriceRow]


class FinancialPage(Page):
    items: list[FinancialRow]


class TrainingPage(Page):
    items: list[TrainingRow]
    repeats: list[Repeat] = Field(description="Everyone in the selection (all pages) trained more than once on "
                                              "the same course title, in any year; the same on every page.")


SEIZURES = Table("seizures", seizure_row, SeizureRow, SeizurePage)
ROUTES = Table("routes", route_row, RouteRow, RoutePage)
PRICES = Table("prices", price_row, PriceRow, PricePage)
FINANCIAL = Table("financial", financial_row, FinancialRow, FinancialPage)


@router.get("/v1/views/seizures", response_model=SeizurePage, responses=CSV)
async def seizures_view(request: Request, repository: RepositoryDep, answers: AnswersDep, country: Country = None,
                        year: Year = None, drug: Drug = None, limit: Limit = 100, cursor: Cursor = None,
                        format_: Format = "json") -> Response:
    """Seizures by country × year × drug (the questionnaire's national table), in normalised units."""
    filters = _filters(country=country, year=year, drug=drug)
    return await table_page(request, repository, answers, SEIZURES, filters, cursor, limit, format_)


@router.get("/v1/views/routes", response_model=RoutePage, responses=CSV)
async def routes_view(
    request: Request, repository: RepositoryDep, answers: AnswersDep,
    route: Annotated[Route | None, Query()] = None,
    drug: Drug = None,
    from_: Annotated[str | None, Query(alias="from", pattern=MONTH, description="First month, YYYY-MM")] = None,
    to: Annotated[str | None, Query(pattern=MONTH, description="Last month, YYYY-MM")] = None,
    limit: Limit = 100, cursor: Cursor = None, format_: Format = "json",
) -> Response:
    """Trend by route × month × drug: cases and quantity in normalised units."""
    filters = _filters(route=route, drug=drug, month=range_filter(from_, to))
    return await table_page(request, repository, answers, ROUTES, filters, cursor, limit, format_)


@router.get("/v1/views/prices", response_model=PricePage, responses=CSV)
async def prices_view(
    request: Request, repository: RepositoryDep, answers: AnswersDep, country: Country = None, year: Year = None,
    drug: Drug = None, market: Annotated[Market | None, Query()] = None,
    limit: Limit = 100, cursor: Cursor = None, format_: Format = "json",
) -> Response:
    """Prices per gram by country × year × drug × market, per currency: observations, min, max and mean."""
    filters = _filters(country=country, year=year, drug=drug, market=market)
    return await table_page(request, repository, answers, PRICES, filters, cursor, limit, format_)


@router.get("/v1/views/financial", response_model=FinancialPage, responses=CSV)
async def financial_view(
    request: Request, repository: RepositoryDep, answers: AnswersDep, country: Country = None, year: Year = None,
    case_type: Annotated[CaseType | None, Query()] = None,
    limit: Limit = 100, cursor: Cursor = None, format_: Format = "json",
) -> Response:
    """Illicit financial flow cases by country × year × case type, per currency."""
    filters = _filters(country=country, year=year, case_type=case_type)
    return await table_page(request, repository, answers, FINANCIAL, filters, cursor, limit, format_)


def _day(value: str | None, parameter: str) -> str | None:
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            bad_query(parameter, "date_invalid", "is not a calendar date (YYYY-MM-DD)")
    return value


@router.get("/v1/views/map", response_model=FeatureCollection)
async def map_view(
    repository: RepositoryDep, answers: AnswersDep, drug: Drug = None, route: Annotated[Route | None, Query()] = None,
    from_: Annotated[str | None, Query(alias="from", pattern=DAY, json_schema_extra={"format": "date"},
                                       description="First day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(pattern=DAY, json_schema_extra={"format": "date"},
                                    description="Last day, YYYY-MM-DD")] = None,
    limit: Limit = PAGE_MAX, cursor: Cursor = None,
) -> Response:
    """Seizures with coordinates as a GeoJSON FeatureCollection (points are [lon, lat])."""
    seized_on = range_filter(_day(from_, "from"), _day(to, "to"))

    async def page() -> FeatureCollection:
        docs, next_cursor = await page_of(repository, "map", _filters(drug=drug, route=route, seized_on=seized_on),
                                          cursor, limit)
        return FeatureCollection(features=[feature(d) for d in docs], next=next_cursor)

    return await kept(answers, repository, ("map", drug, route, from_, to, limit, cursor), page)


@router.get("/v1/views/trainings", response_model=TrainingPage)
async def trainings_view(repository: RepositoryDep, answers: AnswersDep, country: Country = None,
                         year: Year = None, limit: Limit = 100, cursor: Cursor = None) -> Response:
    """Distinct people trained per participant country × year × agency × programme, and who came twice."""
    # Training rows are groups of documents, so their cursor is the last group's key (as JSON), not an `_id`;
    # keys compare as their JSON does (the same order for the codes and names they hold).
    after = cursor_bytes(cursor) if cursor is not None else None

    async def page() -> TrainingPage:
        trainees = await all_of(repository, "trainees", _filters(country=country, year=year))
        repeats = await all_of(repository, "repeats", {**_filters(country=country), "submissions": {"$gt": 1}})
        rows = [(key, row) for key, row in training_rows(trainees) if after is None or orjson.dumps(key) > after]
        shown = rows[:limit]
        selection = {d["pseudonym"] for d in trainees} if country is not None or year is not None else None
        return TrainingPage(items=[row for _, row in shown], repeats=repeats_among(repeats, selection),
                            next=encode_cursor(orjson.dumps(shown[-1][0])) if len(rows) > limit else None)

    return await kept(answers, repository, ("trainings", country, year, limit, cursor), page)


@router.get("/v1/views/fact-sheet", response_model=FactSheet)
async def fact_sheet_view(repository: RepositoryDep, answers: AnswersDep,
                          country: Annotated[str, Query(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3")],
                          year: Annotated[int, Query(ge=1990, le=2100)]) -> Response:
    """One country's year: seizures, prices, financial cases, treatment and trainings side by side."""
    where = {"country": country, "year": year}

    async def sheet() -> FactSheet:
        return FactSheet(
            country=country, year=year,
            seizures=[seizure_row(d) for d in await all_of(repository, "seizures", where)],
            prices=[price_row(d) for d in await all_of(repository, "prices", where)],
            financial=[financial_row(d) for d in await all_of(repository, "financial", where)],
            treatment=treatment_summary(await all_of(repository, "treatment", where)),
            trainings=training_summary(await all_of(repository, "courses", where),
                                       await all_of(repository, "trainees", where),
                                       await all_of(repository, "repeats", {"country": country,
                                                                          "submissions": {"$gt": 1}})))

    return await kept(answers, repository, ("fact-sheet", country, year), sheet)


@router.get("/v1/exports/arq", response_model=ArqExport, tags=["exports"], responses={
    200: {"content": {"text/csv": {}}, "description": "JSON, or with `format=csv` one CSV table whose `section` "
                                                      "column says which table a line is from: `seizures`, `prices` "
                                                      "or `source` (one line per validated partition)."}})
async def arq_export_view(request: Request, repository: RepositoryDep,
                          country: Annotated[str, Query(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3")],
                          year: Annotated[int, Query(ge=1990, le=2100, description="The reporting year")],
                          format_: ExportFormat = "json") -> ArqExport | Response:
    """The Annual Report Questionnaire's national seizure and price tables for one country and reporting year.

    `source` says which validated events the figures reflect (per partition: the last offset that changed
    them, and how far processing had got), so a published figure can be traced to the data behind it.
    """
    progress = await repository.load_progress()  # read first: the views read next reflect at least this
    where = {"country": country, "year": year}
    export = arq_export(country, year, await all_of(repository, "seizures", where),
                        await all_of(repository, "prices", where), progress, request.app.state.topics.validated,
                        repository.generation, utcnow().isoformat())
    if format_ != "csv":
        return export
    out = io.StringIO()
    writer = csv.DictWriter(out, ARQ_CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(arq_csv_rows(export))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="arq-{country}-{year}.csv"',
        "X-Generated-At": export.generated_at})
