"""Dataset converters (Cityscapes, VOC, MOT, CrowdHuman, YouTube-VIS, images, YOLO <-> COCO) and
checkpoint converters (publish, MMDetection and torchvision weights). Each converter is a plain
function returning summary rows; `det convert ...` only parses arguments and prints them."""
