#!/usr/bin/env python3
"""Sends real spans with the OpenTelemetry Python SDK to an OTLP/HTTP receiver.

Used by collector/tests/real_senders.rs. Three spans of one trace, from service --service:
  "POST /pay"  SERVER, http.response.status_code=200        (the parent)
  "charge"     CLIENT, peer.service=provider-a, child of it
  "debit"      INTERNAL, status ERROR, child of it
Exits 1 when the exporter reports a failed export, so the test sees the receiver's refusal.
Pins (scripts/test.sh): opentelemetry-sdk 1.45.1, opentelemetry-exporter-otlp-proto-http 1.45.1,
opentelemetry-exporter-otlp-json-http 0.66b1.
"""
import argparse
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="full URL, e.g. http://127.0.0.1:4318/v1/traces")
    ap.add_argument("--encoding", choices=["protobuf", "json"], required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--compression", choices=["none", "gzip"], default="none")
    ap.add_argument("--token", default=None, help="bearer token to send")
    args = ap.parse_args()

    # Both exporters read their compression from the environment when none is passed.
    os.environ["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"] = args.compression

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import SpanKind, Status, StatusCode

    if args.encoding == "protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    inner = OTLPSpanExporter(endpoint=args.endpoint, headers=headers, timeout=10)

    class Recording(SpanExporter):
        """Delegates and remembers every export result."""

        def __init__(self):
            self.results = []

        def export(self, spans):
            r = inner.export(spans)
            self.results.append(r)
            return r

        def shutdown(self):
            inner.shutdown()

    exporter = Recording()
    provider = TracerProvider(resource=Resource.create({"service.name": args.service, "wallet.cell": "cell-2"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("cellwarden-test")

    with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "provider-a")
            child.set_attribute("ignored.attribute", "x")
        with tracer.start_as_current_span("debit", kind=SpanKind.INTERNAL) as failing:
            failing.set_status(Status(StatusCode.ERROR, "insufficient funds"))
    provider.shutdown()

    failed = [r for r in exporter.results if r != SpanExportResult.SUCCESS]
    print(f"exports: {len(exporter.results)}, failed: {len(failed)}", file=sys.stderr)
    return 1 if failed or not exporter.results else 0


if __name__ == "__main__":
    sys.exit(main())
