"""What each request asks IAM for: the action (service prefix + operation as IAM names it) and
the resource ARN as the service forms it, plus the refusal in the service's own error shape.

S3's operation-to-action mapping is moto's own (``moto.s3.responses.ACTION_MAP``); SageMaker
ARNs follow SageMaker's form (resource type, lower-cased name).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.s3.responses import ACTION_MAP

from local_sagemaker.iam import Call
from local_sagemaker.protocol import ACCOUNT_ID, dump_json

PASSED_TO_SAGEMAKER = (("iam:PassedToService", "sagemaker.amazonaws.com"),)
# Operations whose request passes a role to SageMaker, and the member naming it
PASSES_ROLE = {"CreateTrainingJob": "RoleArn", "CreateProcessingJob": "RoleArn",
               "CreateModel": "ExecutionRoleArn"}
# S3 operations IAM authorizes under another action than moto's name for them
S3_ACTION_ALIASES = {"HeadBucket": "ListBucket"}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def sagemaker_calls(operation: str, params: dict[str, Any], region: str) -> list[Call]:
    """``sagemaker:<Operation>`` on the resource it names, plus ``iam:PassRole`` for a role it passes.

    Create/Describe/Update/Delete<Thing> names its resource in ``<Thing>Name`` or ``<Thing>Arn``
    (the ARN type is <thing> in kebab case); List*/Search operations have no resource-level permissions ("*")."""
    calls = [Call(f"sagemaker:{operation}", sagemaker_resource(operation, params, region))]
    role = params.get(PASSES_ROLE.get(operation, ""))
    if isinstance(role, str):
        calls.append(Call("iam:PassRole", role, PASSED_TO_SAGEMAKER))
    return calls


def sagemaker_resource(operation: str, params: dict[str, Any], region: str) -> str:
    def arn(kind: str, name: str) -> str:
        return name if name.startswith("arn:") else \
            f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{name.lower()}"

    if operation == "InvokeEndpoint":
        return arn("endpoint", params.get("EndpointName", ""))
    if operation == "CreateModelPackage" and params.get("ModelPackageGroupName"):
        group = params["ModelPackageGroupName"]
        return arn("model-package", group.rsplit("/", 1)[-1] if group.startswith("arn:") else group)
    match = re.fullmatch(r"(?:Create|Describe|Update|Delete|Stop|Get)([A-Z]\w*)", operation)
    if match:
        thing = match.group(1)
        name = params.get(f"{thing}Name") or params.get(f"{thing}Arn")
        if isinstance(name, str) and name:
            return arn(_kebab(thing), name)
    return "*"


def s3_calls(method: str, path: str, query: str, headers: dict[str, str]) -> list[Call]:
    """The S3 action of a path-style request (moto's ACTION_MAP), on the bucket or object ARN."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket:
        return [Call("s3:ListAllMyBuckets", "*")]
    querystring = parse_qs(query, keep_blank_values=True)
    kind = "KEY" if key else "BUCKET"
    if kind == "BUCKET" and method == "POST" and "delete" in querystring:
        return [Call("s3:DeleteObject", f"arn:aws:s3:::{bucket}/*")]
    table = ACTION_MAP[kind].get(method, {})
    action = next((a for q, a in table.items() if q != "DEFAULT" and q in querystring),
                  table.get("DEFAULT", method))
    action = S3_ACTION_ALIASES.get(action, action)
    resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    calls = [Call(f"s3:{action}", resource)]
    source = headers.get("x-amz-copy-source")
    if source and method == "PUT":
        calls.append(Call("s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/').split('?')[0]}"))
    return calls


def query_calls(service: str, params: dict[str, str], region: str) -> list[Call]:
    """SNS, STS and IAM (query protocol): the ``Action`` parameter; the topic (SNS publishes to a
    ``TopicArn`` or, as the Amazon provider does, a ``TargetArn``) or role it names."""
    action = params.get("Action", "")
    resource = params.get("TopicArn") or params.get("TargetArn") or params.get("RoleArn") or "*"
    return [Call(f"{service}:{action}", resource)]


def logs_calls(operation: str, params: dict[str, Any], region: str) -> list[Call]:
    """CloudWatch Logs: the stream's ARN when the request names one, else the group's in the form
    IAM evaluates it (``log-group:<name>:*``, as CloudWatch Logs' access-control overview says)."""
    group = params.get("logGroupName")
    if not group:
        return [Call(f"logs:{operation}", "*")]
    resource = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}"
    stream = params.get("logStreamName")
    resource += f":log-stream:{stream}" if stream else ":*"
    return [Call(f"logs:{operation}", resource)]


def form_params(body: bytes, query: str) -> dict[str, str]:
    pairs = parse_qs(query, keep_blank_values=True)
    pairs.update(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {key: values[0] for key, values in pairs.items()}


def json_params(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body) if body else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def refusal(protocol: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The refusal as the service answers it: JSON AccessDeniedException (SageMaker, Runtime,
    Logs), S3's XML AccessDenied, the query services' ErrorResponse (SNS AuthorizationError)."""
    request_id = str(uuid.uuid4())
    if protocol == "json":
        return 400, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id),
                     ("x-amzn-ErrorType", "AccessDeniedException")], \
            dump_json({"__type": "AccessDeniedException", "message": message})
    if protocol == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>")
        return 403, [("Content-Type", "application/xml")], body.encode()
    code = "AuthorizationError" if protocol == "sns" else "AccessDenied"
    body = (f'<ErrorResponse xmlns="https://{protocol}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return 403, [("Content-Type", "text/xml")], body.encode()
