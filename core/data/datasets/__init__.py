"""Dataset types buildable from presets (`data.train.dataset: {type: CocoDataset, ...}`)."""
from det.core.data.datasets.base import BaseDetDataset
from det.core.data.datasets.cityscapes import CityscapesDataset
from det.core.data.datasets.coco import CocoDataset
from det.core.data.datasets.coco_panoptic import CocoPanopticDataset
from det.core.data.datasets.crowdhuman import CrowdHumanDataset
from det.core.data.datasets.lvis import LVISV1Dataset
from det.core.data.datasets.middle import CustomDataset
from det.core.data.datasets.mot import MOTChallengeDataset
from det.core.data.datasets.objects365 import Objects365V2Dataset
from det.core.data.datasets.openimages import OpenImagesDataset
from det.core.data.datasets.synthetic import SyntheticPanopticShapes, SyntheticShapes
from det.core.data.datasets.voc import VOC_CLASSES, VOCDataset
from det.core.data.datasets.wider_face import WIDERFaceDataset
from det.core.data.datasets.wrappers import ClassBalancedDataset, ConcatDataset, RepeatDataset

DATASETS = {
    "CocoDataset": CocoDataset,
    "CocoPanopticDataset": CocoPanopticDataset,
    "LVISV1Dataset": LVISV1Dataset,
    "CrowdHumanDataset": CrowdHumanDataset,
    "CityscapesDataset": CityscapesDataset,
    "VOCDataset": VOCDataset,
    "CustomDataset": CustomDataset,
    "MiddleFormatDataset": CustomDataset,
    "MOTChallengeDataset": MOTChallengeDataset,
    "OpenImagesDataset": OpenImagesDataset,
    "Objects365V2Dataset": Objects365V2Dataset,
    "WIDERFaceDataset": WIDERFaceDataset,
    "SyntheticShapes": SyntheticShapes,
    "SyntheticPanopticShapes": SyntheticPanopticShapes,
    "RepeatDataset": RepeatDataset,
    "ConcatDataset": ConcatDataset,
    "ClassBalancedDataset": ClassBalancedDataset,
}

__all__ = [
    "DATASETS", "VOC_CLASSES", "BaseDetDataset", "CityscapesDataset", "ClassBalancedDataset", "CocoDataset", "CocoPanopticDataset", "ConcatDataset",
    "CrowdHumanDataset", "CustomDataset", "LVISV1Dataset", "MOTChallengeDataset", "Objects365V2Dataset", "OpenImagesDataset", "RepeatDataset", "SyntheticPanopticShapes", "SyntheticShapes", "VOCDataset", "WIDERFaceDataset",
]
