"""Which parameters of a model are the pretrained body and which are the new head."""

from __future__ import annotations

from torch import nn

from amcf.layers import head_param_ids


def split_trainable(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(body, head): the trainable parameters by name, the classifier head's kept apart."""
    head_ids = head_param_ids(model)
    body: dict[str, nn.Parameter] = {}
    head: dict[str, nn.Parameter] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if id(p) in head_ids else body)[name] = p
    return body, head


def model_device(model: nn.Module):
    p = next(model.parameters(), None)
    if p is None:
        raise ValueError("the model has no parameters")
    return p.device
