"""Networks the PyTorch flavor tests save: importable, so safetensors plus the class path works."""

from __future__ import annotations

import torch


class TinyNet(torch.nn.Module):
    """Two inputs, one output; built without arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x))


class SizedNet(torch.nn.Module):
    """Needs its size to be built: saved as TorchScript."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
