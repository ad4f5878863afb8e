"""What every SageMaker operation handler shares: the context, the registry and list paging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_sagemaker.endpoints import EndpointManager
from local_sagemaker.jobs import JobManager
from local_sagemaker.protocol import AwsError, public_view, validation_error
from local_sagemaker.settings import Settings
from local_sagemaker.state import Store

Handler = Callable[["Context", dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Handler] = {}


@dataclass
class Context:
    settings: Settings
    store: Store
    jobs: JobManager
    endpoints: EndpointManager


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register a handler under its AWS operation name (the X-Amz-Target suffix)."""

    def register(handler: Handler) -> Handler:
        OPERATIONS[name] = handler
        return handler

    return register


def require(ctx: Context, table: str, key: str, missing: str,
            code: str = "ValidationException") -> dict[str, Any]:
    """The record, or the AWS error clients expect for an unknown name."""
    record = ctx.store.get(table, key)
    if record is None:
        raise AwsError(code, missing)
    return record


def describe(record: dict[str, Any]) -> dict[str, Any]:
    return public_view(record)


def list_page(records: list[dict[str, Any]], params: dict[str, Any], *, result_key: str,
              name_key: str, summary_keys: tuple[str, ...], status_key: str | None = None,
              default_sort: str = "CreationTime", tiebreak: str | None = None) -> dict[str, Any]:
    """A List* response: records filtered, sorted and paged as SageMaker does, each shown as
    its ``summary_keys``."""
    name_contains = (params.get("NameContains") or "").lower()
    if name_contains:
        records = [r for r in records if name_contains in r[name_key].lower()]
    if status_key and params.get("StatusEquals"):
        records = [r for r in records if r[status_key] == params["StatusEquals"]]
    for param, field, after in (("CreationTimeAfter", "CreationTime", True),
                                ("CreationTimeBefore", "CreationTime", False),
                                ("LastModifiedTimeAfter", "LastModifiedTime", True),
                                ("LastModifiedTimeBefore", "LastModifiedTime", False)):
        if params.get(param) is not None:
            bound = float(params[param])
            records = [r for r in records if (r[field] > bound if after else r[field] < bound)]
    sort_fields = {"Name": name_key, "CreationTime": "CreationTime", "Status": status_key}
    sort_field = sort_fields.get(params.get("SortBy") or default_sort) or "CreationTime"
    records.sort(key=lambda r: (r.get(sort_field) or "", r[name_key], r.get(tiebreak, 0)),
                 reverse=(params.get("SortOrder") or "Descending") == "Descending")
    token = params.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise validation_error(f"Invalid pagination token {token!r}") from None
    size = params.get("MaxResults") or 10
    response: dict[str, Any] = {
        result_key: [public_view(pick(r, *summary_keys)) for r in records[start:start + size]]}
    if start + size < len(records):
        response["NextToken"] = str(start + size)
    return response


def pick(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: record[k] for k in keys if k in record}
