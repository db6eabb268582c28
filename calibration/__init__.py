"""Precision for deployment: FP16 and INT8 graphs baked into ONNX, and their accuracy (SPEC §6).

* :mod:`calibration.dataset`: synthetic calibration and validation sets from validation-split images.
* :mod:`calibration.fp16`, :mod:`calibration.int8`: the conversions; :mod:`calibration.graph`: their checks.
* :mod:`calibration.mixed`: per-layer INT8 sensitivity and mixed INT8/FP16 graphs (``--sensitivity``, ``--keep-fp16``).
* :mod:`calibration.cli` (``svbr calibrate``) and :mod:`calibration.validate` (``svbr validate``, through
  Polygraphy's runners and comparator: :mod:`calibration.comparison`).
* :mod:`calibration.debug_precision`: ``polygraphy debug precision`` with our SSIM as the check (TensorRT 10).

Engines are built on the runtime side (:mod:`runtime.tensorrt_build`, ``svbr build-engine``).
"""
