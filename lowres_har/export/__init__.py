"""Deployment: export artefacts (ONNX, TFLite, Edge TPU) and measure models.

Submodules are imported explicitly (``from lowres_har.export.benchmark import benchmark_model``);
this package import stays light.
"""

__all__: list[str] = []
