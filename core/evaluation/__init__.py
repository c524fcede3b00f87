"""Evaluation: COCO metrics through pycocotools (coco.py), VOC mAP (voc.py), and evaluators that
turn model predictions into those metrics (evaluator.py)."""
