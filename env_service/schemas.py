"""Request and response models of the HTTP API (the boundary: pydantic validates, 422 on error)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from env_service.formats import join_calls

# What GET /health names itself (`env_service.serving.env_service_health` checks it).
SERVICE_NAME = "literesearcher-env"

RetrievalMode = Literal["bm25", "dense", "sparse", "hybrid"]


class RequestLimitError(ValueError):
    """A request that is well-formed but exceeds a configured limit (answered with 422)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _as_list(value: object, name: str) -> object:
    # The agent's tools take arrays, humans often send one string: accept both.
    if isinstance(value, str):
        return [value]
    if value is None:
        raise ValueError(f"{name} is required")
    return value


class SearchRequest(_Request):
    query: list[str] = Field(description="one query or a list of queries")
    top_k: Annotated[int, Field(ge=1, le=100)] | None = None
    mask_urls: list[str] = Field(default_factory=list)
    mode: RetrievalMode | None = None

    @field_validator("query", mode="before")
    @classmethod
    def _query_list(cls, value: object) -> object:
        return _as_list(value, "query")

    @field_validator("query")
    @classmethod
    def _query_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("query must contain at least one query")
        for i, q in enumerate(value):
            if not q.strip():
                raise ValueError(f"query[{i}] is empty")
        return value

    def check_limits(self, *, max_queries: int, max_query_chars: int, max_url_chars: int) -> None:
        if len(self.query) > max_queries:
            raise RequestLimitError(
                f"too many queries: {len(self.query)} > max_queries_per_call={max_queries}"
            )
        for i, q in enumerate(self.query):
            if len(q) > max_query_chars:
                raise RequestLimitError(
                    f"query[{i}] is too long: {len(q)} > max_query_chars={max_query_chars}"
                )
        _check_urls(self.mask_urls, "mask_urls", max_url_chars)


class VisitRequest(_Request):
    url: list[str] = Field(description="one URL or a list of URLs")
    goal: str
    mask_urls: list[str] = Field(default_factory=list)

    @field_validator("url", mode="before")
    @classmethod
    def _url_list(cls, value: object) -> object:
        return _as_list(value, "url")

    @field_validator("url")
    @classmethod
    def _url_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("url must contain at least one URL")
        for i, u in enumerate(value):
            if not u.strip():
                raise ValueError(f"url[{i}] is empty")
        return value

    def check_limits(self, *, max_urls: int, max_url_chars: int, max_goal_chars: int) -> None:
        if len(self.url) > max_urls:
            raise RequestLimitError(
                f"too many URLs: {len(self.url)} > max_urls_per_call={max_urls}"
            )
        _check_urls(self.url, "url", max_url_chars)
        _check_urls(self.mask_urls, "mask_urls", max_url_chars)
        if len(self.goal) > max_goal_chars:
            raise RequestLimitError(f"goal is too long: {len(self.goal)} > {max_goal_chars} chars")


def _check_urls(urls: list[str], name: str, max_chars: int) -> None:
    for i, u in enumerate(urls):
        if len(u) > max_chars:
            raise RequestLimitError(
                f"{name}[{i}] is too long: {len(u)} > max_url_chars={max_chars}"
            )


class SearchResult(BaseModel):
    url: str
    title: str
    snippet: str
    score: float


class QueryResults(BaseModel):
    query: str
    results: list[SearchResult]
    text: str


class SearchResponse(BaseModel):
    mode: RetrievalMode
    results: list[QueryResults]
    text: str

    @classmethod
    def from_queries(cls, mode: RetrievalMode, results: list[QueryResults]) -> SearchResponse:
        return cls(mode=mode, results=results, text=join_calls(r.text for r in results))


class VisitResult(BaseModel):
    url: str  # as requested
    canonical_url: str | None
    found: bool
    title: str
    content: str  # the page text the extractor saw (truncated to the token budget)
    text: str


class VisitResponse(BaseModel):
    results: list[VisitResult]
    text: str

    @classmethod
    def from_urls(cls, results: list[VisitResult]) -> VisitResponse:
        return cls(results=results, text=join_calls(r.text for r in results))
