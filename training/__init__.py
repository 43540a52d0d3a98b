"""Offline training: real data in, ONNX models, manifest and an honest report out."""
