"""Precision for deployment: FP16 and INT8 graphs baked into ONNX, and their accuracy (SPEC §6).

* :mod:`calibration.dataset`: synthetic calibration and validation sets from validation-split images.
* :mod:`calibration.fp16`, :mod:`calibration.int8`: the conversions; :mod:`calibration.graph`: their checks.
* :mod:`calibration.cli` (``svbr calibrate``) and :mod:`calibration.validate` (``svbr validate``).

Engines are built on the runtime side (:mod:`runtime.tensorrt_build`, ``svbr build-engine``).
"""
