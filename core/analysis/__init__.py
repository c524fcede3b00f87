"""Analysis tools on files: training logs, confusion matrices, FLOPs, anchors, result fusion,
per-image AP. Import the submodules directly (`det.core.analysis.logs`, ...)."""
