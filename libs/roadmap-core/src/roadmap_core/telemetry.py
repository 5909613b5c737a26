"""Tracing: one OpenTelemetry trace per roadmap, across the API, the queue, the workers,
every LLM call and database write, and the logs worker.

**Off by default.** On when the standard variables name an OTLP/HTTP endpoint:
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (and
``OTEL_SDK_DISABLED`` is not ``true``, ``OTEL_TRACES_EXPORTER`` not ``none``). The
exporter reads the rest of the standard variables itself (headers, timeout, compression,
certificates), the SDK the sampler (``OTEL_TRACES_SAMPLER``), the batch processor its
knobs. ``service.name`` is the service's own name unless ``OTEL_SERVICE_NAME`` or
``OTEL_RESOURCE_ATTRIBUTES`` names one.

What makes the spans, standard instrumentations wherever one exists:

* the API: one server span per request that continues an incoming ``traceparent``
  (:mod:`roadmap_api.tracing`: the W3C propagator and the HTTP semantic conventions;
  it says why not FastAPI's own ``FastAPI(telemetry=...)``, which costs far more CPU);
* Celery tasks in the workers: ``opentelemetry-instrumentation-celery`` (a consumer span
  per task, continuing the context its message carries; a producer span and the context
  in the headers of every message sent through kombu);
* PostgreSQL (``asyncpg``), Redis and the LLM's HTTP client (``httpx2``): their
  instrumentations;
* log records get ``trace_id``/``span_id`` (``opentelemetry-instrumentation-logging``).

Ours, where no library can know: the API pushes task messages itself
(:mod:`roadmap_core.task_wire`), so it puts the context into their headers with
:func:`carrier`; a roadmap's ``plan_job`` message carries the context of the request that
submitted it, although the submit statement runs for a batch. An LLM call gets a
``gen_ai`` span with its model and token usage (:mod:`roadmap_core.llm.observe`), and
execution-log events carry the ids of the span that emitted them (in ``details``), so the
logs worker writes each batch in a span of every trace it holds.

Prefork children set up their own provider after fork (``worker_process_init``); uvicorn
workers in their lifespan.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Final

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES: Final = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_provider: TracerProvider | None = None
# Tracers handed out by tracer(), dropped whenever the provider changes.
_tracers: dict[str, trace.Tracer] = {}
# Read on hot paths (every emitted log event, every task message): a plain bool.
enabled = False


def configured() -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _resource(service: str) -> Resource:
    named = os.environ.get("OTEL_SERVICE_NAME", "").strip() or any(
        part.strip().startswith(f"{SERVICE_NAME}=")
        for part in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    )
    return Resource.create({} if named else {SERVICE_NAME: service})


def setup(service: str, *, celery: bool = False) -> bool:
    """Start tracing in this process if the environment asks for it; True when on.

    ``celery``: also trace the Celery tasks this process runs and the messages it sends.
    """
    global _provider, enabled
    if _provider is not None:
        return True
    if not configured():
        return False
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol.strip() and protocol.strip() != "http/protobuf":
        log.warning("OTLP protocol %r is not supported; traces go out as http/protobuf", protocol)

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = TracerProvider(resource=_resource(service))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    if importlib.util.find_spec("httpx2") is not None:
        # Only with the LLM client installed (roadmap-core[pipeline]: the content worker).
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

        HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)
    LoggingInstrumentor().instrument(
        tracer_provider=provider,
        set_logging_format=False,
        inject_trace_context=True,
        enable_log_auto_instrumentation=False,  # ids on records; no log export
    )
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _tracers.clear()
    _provider, enabled = provider, True
    log.info("tracing on: spans of %s go to the OTLP endpoint", service)
    return True


def shutdown(timeout_s: float = 5.0) -> None:
    """Export what is buffered (within ``timeout_s``) and stop."""
    global _provider, enabled
    provider, _provider, enabled = _provider, None, False
    _tracers.clear()
    if provider is not None:
        provider.force_flush(int(timeout_s * 1000))
        provider.shutdown()


def carrier() -> dict[str, str] | None:
    """The current trace context as message headers (``traceparent``…), None when off."""
    if not enabled:
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex; None when off, outside a span, or
    in a trace the sampler left out.

    An unsampled trace is never recorded anywhere: ids of it would lead nowhere, and the
    logs worker, which continues the trace these ids name, would record its write spans
    as orphans of it.
    """
    if not enabled:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.trace_flags.sampled:  # also the invalid context outside any span
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def tracer(name: str) -> trace.Tracer:
    """The tracer of ``name`` from this process's provider.

    Kept per name: the SDK builds a new tracer (and its instrumentation scope) on every
    ``get_tracer`` call, 8 µs that a per-request span would pay each time.
    """
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = trace.get_tracer(name)
    return found


def tag_job(job_id: object) -> None:
    """Name the roadmap on the current span (``roadmap.job_id``), to find its trace by id."""
    if enabled:
        trace.get_current_span().set_attribute("roadmap.job_id", str(job_id))
