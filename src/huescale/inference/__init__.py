"""Inference on people's photographs: tiled colorization, ONNX export, the shipped model."""
