"""Deployment: export a checkpoint to ONNX / OpenVINO / TorchScript, run exported files, serve."""
