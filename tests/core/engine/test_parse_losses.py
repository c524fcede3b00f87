"""The training total: every loss key counts, the auxiliary terms of transformer heads included."""
from __future__ import annotations

import pytest
import torch

from det.core.engine.step import parse_losses
from det.core.errors import DetError


def test_auxiliary_and_denoising_terms_are_trained():
    losses = {"loss_cls": torch.tensor(1.0), "d0.loss_bbox": torch.tensor(2.0), "enc_loss_iou": torch.tensor(4.0),
              "dn_loss_cls": torch.tensor(8.0), "acc": torch.tensor(100.0), "loss_list": [torch.ones(2), torch.ones(3)]}
    total, logged = parse_losses(losses)
    assert float(total) == 1 + 2 + 4 + 8 + 2
    assert float(logged["acc"]) == 100.0 and set(logged) == set(losses)



def test_no_loss_term_is_an_error():
    with pytest.raises(DetError, match="no 'loss\\*' entries"):
        parse_losses({"acc": torch.tensor(1.0)})
