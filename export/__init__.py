"""Export SVBR-Net checkpoints to ONNX (``svbr export``); needs torch, unlike ``runtime``."""
