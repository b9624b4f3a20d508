"""Traces (OpenTelemetry, loaded on the first sampled request) and metric facts as log fields."""

from shared.telemetry import metrics, tracing

__all__ = ["metrics", "tracing"]
