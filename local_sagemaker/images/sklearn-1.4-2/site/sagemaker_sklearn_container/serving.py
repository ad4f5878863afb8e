"""The image's serving module (``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main``).

Written against the same public toolkit as the image's own module (sagemaker-containers'
``beta.framework``): gunicorn runs ``main`` as the WSGI app; the first request a worker gets
(``/ping`` included) imports ``SAGEMAKER_PROGRAM`` and loads the model with its ``model_fn``, then
``worker.Worker`` serves ``/ping`` and ``/invocations`` through a ``transformer.Transformer``.
What the image does is what matters here, quirks included, because it decides which requests
fail on SageMaker:
- every handler, the defaults below included, is handed to the Transformer, which wraps what it
  raises in ``ClientError``; Flask answers any raised error with HTTP 500 (its HTML error page),
  even an unsupported content type or an error that carries a 4xx ``status_code``;
- a handler answers 4xx only by *returning* a response with that status (``output_fn`` or
  ``transform_fn`` returning ``worker.Response(body, status=400)``);
- the default ``input_fn`` decodes ``text/csv`` and ``application/json`` (exact media types, no
  parameters) to float32 arrays, ``application/x-npy`` as is; a one-row CSV becomes a 1-D array;
- there is no default ``model_fn``: the entry point must define one.
Multi-model endpoints (``SAGEMAKER_MULTI_MODEL``, served by MMS in the image) are not available.
"""

from __future__ import annotations

import importlib
import logging
import os

import numpy as np
from sagemaker_containers.beta.framework import (
    content_types,
    encoders,
    env,
    modules,
    server,
    transformer,
    worker,
)

logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
logging.getLogger("boto3").setLevel(logging.INFO)
logging.getLogger("s3transfer").setLevel(logging.INFO)
logging.getLogger("botocore").setLevel(logging.WARN)
logger = logging.getLogger(__name__)


class UserError(Exception):
    """A mistake in the user's entry point (the image raises its own ``UserError`` here too)."""


def default_model_fn(model_dir):
    """The toolkit's default: raises, asking for a ``model_fn`` (the image provides no loader)."""
    return transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type):
    """Decode with the toolkit's encoders; text payloads become float32 arrays."""
    array = encoders.decode(input_data, content_type)
    return array.astype(np.float32) if content_type in content_types.UTF8_TYPES else array


def default_predict_fn(input_data, model):
    return model.predict(input_data)


def default_output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), mimetype=accept)


def _transformer_for(user_module) -> transformer.Transformer:
    """The user's handlers, with the image's defaults for those it does not define."""
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    handlers = {name: getattr(user_module, name, None)
                for name in ("input_fn", "predict_fn", "output_fn")}  # fmt: skip
    transform_fn = getattr(user_module, "transform_fn", None)
    if transform_fn is not None:
        if any(handlers.values()):
            raise UserError(
                "Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn"
            )
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=handlers["input_fn"] or default_input_fn,
        predict_fn=handlers["predict_fn"] or default_predict_fn,
        output_fn=handlers["output_fn"] or default_output_fn,
    )


def import_module(module_name, module_dir):
    """Import the entry point (installed by the server at start) and load the model."""
    try:
        user_module = importlib.import_module(module_name)
    except ImportError:  # not installed yet: download, install and import it
        user_module = modules.import_module(module_dir, module_name)
    model_transformer = _transformer_for(user_module)
    model_transformer.initialize()
    return model_transformer, getattr(user_module, "execution_parameters_fn", None)


app = None


def main(environ, start_response):
    """The WSGI app: builds the Flask worker on the first request this process gets."""
    global app
    if app is None:
        serving_env = env.ServingEnv()
        model_transformer, execution_parameters_fn = import_module(
            serving_env.module_name, serving_env.module_dir
        )
        app = worker.Worker(
            transform_fn=model_transformer.transform,
            module_name=serving_env.module_name,
            execution_parameters_fn=execution_parameters_fn,
        )
    return app(environ, start_response)


def serving_entrypoint():
    """The image's ``serve`` command: nginx + gunicorn through sagemaker-containers' server."""
    if os.environ.get("SAGEMAKER_MULTI_MODEL"):
        raise UserError("Multi-model endpoints (SAGEMAKER_MULTI_MODEL) are not available here")
    server.start(env.ServingEnv().framework_module)
