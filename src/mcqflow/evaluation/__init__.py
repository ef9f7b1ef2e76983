"""Predict and compare: inference, answer extraction, metrics, statistics, reports."""
