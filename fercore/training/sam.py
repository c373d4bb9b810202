"""Sharpness-Aware Minimisation (SAM; HSEmotion's "RobustOptimizer"), wrapping any base optimizer.

One SAM update takes two gradients (Foret et al., 2021):

1. ``first_step``: with the gradient g at w, move to the worst nearby point
   w + e, e = rho * g / ||g|| (adaptive SAM: e = rho * w^2 * g / ||w * g||);
2. compute the gradient at w + e, then ``second_step``: restore w and let the base
   optimizer step with that second gradient.

No maintained pip package provides SAM for current PyTorch, so this is written here (small).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class SAM(torch.optim.Optimizer):
    """SAM around ``base_optimizer`` (a class, e.g. ``torch.optim.Adam``) built on the same params."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        base_optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        **base_kwargs: Any,
    ):
        if rho < 0:
            raise ValueError(f"rho must be non-negative, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups  # one set of groups: lr changes reach both

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            ((p.abs() if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            raise RuntimeError("SAM.first_step: no parameter has a gradient; call loss.backward() first")
        return torch.stack([n.to(norms[0].device) for n in norms]).norm(p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Perturb the weights towards higher loss (ascent of size rho)."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e_w = (p.pow(2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
                self.state[p]["e_w"] = e_w
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Undo the perturbation, then step the base optimizer with the perturbed gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                e_w = self.state[p].pop("e_w", None)
                if e_w is not None:
                    p.sub_(e_w)
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """Full SAM update; ``closure`` must zero grads, recompute the loss and call backward."""
        if closure is None:
            raise RuntimeError("SAM.step needs a closure (or call first_step / second_step yourself)")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state (SAM keeps nothing between updates)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
