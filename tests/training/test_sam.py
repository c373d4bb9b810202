import numpy as np
import pytest
import torch

from fercore.training.sam import SAM

A = torch.tensor([1.0, 3.0])


def quadratic(w):
    return 0.5 * (A * w * w).sum()  # gradient: A * w


def hand_sam_step(w, rho, lr, adaptive=False):
    w = np.array(w, dtype=np.float64)
    a = A.numpy().astype(np.float64)
    g = a * w
    scale = w * w if adaptive else np.ones_like(w)
    norm = np.linalg.norm((np.abs(w) if adaptive else 1.0) * g)
    e = scale * g * rho / norm
    return w - lr * a * (w + e), w + e


@pytest.mark.parametrize("adaptive", [False, True])
def test_two_step_update_matches_hand_computation(adaptive):
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=0.05, adaptive=adaptive, lr=0.1)
    expected, perturbed = hand_sam_step([1.0, 2.0], 0.05, 0.1, adaptive)
    quadratic(w).backward()
    opt.first_step(zero_grad=True)
    assert np.allclose(w.detach().numpy(), perturbed, atol=1e-6)  # moved to w + e
    assert w.grad is None
    quadratic(w).backward()  # gradient at the perturbed point
    opt.second_step()
    assert np.allclose(w.detach().numpy(), expected, atol=1e-6)  # restored, then stepped


def test_step_with_closure_equals_two_calls():
    w1 = torch.tensor([1.0, 2.0], requires_grad=True)
    w2 = torch.tensor([1.0, 2.0], requires_grad=True)
    opt1 = SAM([w1], torch.optim.Adam, rho=0.1, lr=0.01)
    opt2 = SAM([w2], torch.optim.Adam, rho=0.1, lr=0.01)
    for _ in range(3):
        quadratic(w1).backward()
        opt1.first_step()
        quadratic(w1).backward()
        opt1.second_step()

        def closure():
            opt2.zero_grad()
            loss = quadratic(w2)
            loss.backward()
            return loss

        closure()
        opt2.step(closure)
    assert torch.allclose(w1, w2)


def test_rho_zero_is_the_base_optimizer():
    w1 = torch.tensor([1.0, 2.0], requires_grad=True)
    w2 = torch.tensor([1.0, 2.0], requires_grad=True)
    sam, adam = SAM([w1], torch.optim.Adam, rho=0.0, lr=0.05), torch.optim.Adam([w2], lr=0.05)
    for _ in range(4):
        quadratic(w1).backward()
        sam.first_step()
        quadratic(w1).backward()
        sam.second_step()
        adam.zero_grad()
        quadratic(w2).backward()
        adam.step()
    assert torch.allclose(w1, w2)


def test_state_dict_round_trip_and_lr_changes_reach_base():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = SAM([w], torch.optim.Adam, rho=0.05, lr=0.01)
    quadratic(w).backward()
    opt.first_step()
    quadratic(w).backward()
    opt.second_step()
    opt.param_groups[0]["lr"] = 0.5
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.5
    state = opt.state_dict()
    assert "exp_avg" in state["state"][0]
    other = SAM([torch.tensor([1.0, 2.0], requires_grad=True)], torch.optim.Adam, rho=0.05, lr=0.01)
    other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 0.5 and other.param_groups is other.base_optimizer.param_groups


def test_first_step_without_gradients_is_an_error():
    opt = SAM([torch.zeros(2, requires_grad=True)], torch.optim.SGD, lr=0.1)
    with pytest.raises(RuntimeError, match="backward"):
        opt.first_step()
