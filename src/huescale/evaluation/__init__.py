"""Evaluation: scoring models on splits and folders, the x4 SR benchmark, FID, reports, published numbers."""
