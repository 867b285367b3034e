"""The Python module against torch.optim and the C++ adapter (SPEC §9)."""
import copy
import io
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import l2o

SOURCE = pathlib.Path(os.environ.get("L2O_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
HRNN = str(SOURCE / "checkpoints" / "hrnn_mnist.pt")


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(16, 5, generator=g)
        yield x, torch.sin(x.sum(1, keepdim=True))


def train(model, opt, data, use_closure=False):
    for x, y in data:
        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        if use_closure:
            opt.step(closure)
        else:
            closure()
            opt.step()


def max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def test_rule_adam_equals_torch_adam_over_50_steps():
    ours, theirs = make_model(), make_model()
    train(ours, l2o.optim.Rule(ours.parameters(), "adam:lr=1e-3"), batches(50))
    train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-3), batches(50))
    assert max_diff(ours, make_model()) > 1e-3  # it did train
    assert max_diff(ours, theirs) < 1e-6


def test_step_with_closure_returns_the_loss_and_updates_in_place():
    model = make_model()
    before = [p.data_ptr() for p in model.parameters()]
    start = [p.detach().clone() for p in model.parameters()]
    opt = l2o.optim.Rule(model.parameters(), "sgd:lr=0.1")
    x, y = next(batches(1))

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() > 0
    assert [p.data_ptr() for p in model.parameters()] == before  # the same storage: no copies
    for p, p0 in zip(model.parameters(), start):
        assert torch.allclose(p, p0 - 0.1 * p.grad)


def test_learned_equals_cpp_adapter_on_same_model_and_gradients():
    model = make_model()
    start = [p.detach().clone() for p in model.parameters()]
    opt = l2o.optim.Learned(model.parameters(), HRNN)
    assert opt.rule.startswith("hrnn")
    grads = []
    for x, y in batches(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        grads.append([p.grad.detach().clone() for p in model.parameters()])
        opt.step()
    reference = l2o._C._adapter_reference(l2o._C.load_rule(HRNN), start, grads)
    moved = max((p - p0).abs().max().item() for p, p0 in zip(model.parameters(), start))
    assert moved > 0
    for p, r in zip(model.parameters(), reference):
        assert torch.equal(p.detach(), r.detach())


@pytest.mark.parametrize("make", [lambda ps: l2o.optim.Rule(ps, "adam:lr=1e-2"),
                                  lambda ps: l2o.optim.Learned(ps, HRNN)], ids=["adam", "hrnn"])
def test_state_dict_round_trip_continues_exactly(make):
    data = list(batches(12))
    whole = make_model()
    train(whole, make(whole.parameters()), data)

    first = make_model()
    opt = make(first.parameters())
    train(first, opt, data[:6], use_closure=True)
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "optim": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)

    second = make_model(seed=5)
    second.load_state_dict(saved["model"])
    opt2 = make(second.parameters())
    opt2.load_state_dict(saved["optim"])
    train(second, opt2, data[6:], use_closure=True)
    for p, q in zip(whole.parameters(), second.parameters()):
        assert torch.equal(p, q)


def test_state_dict_of_another_rule_is_refused():
    model = make_model()
    sd = l2o.optim.Rule(model.parameters(), "adam").state_dict()
    with pytest.raises(l2o.Error, match="saved for rule 'adam"):
        l2o.optim.Rule(model.parameters(), "rmsprop").load_state_dict(sd)


def test_missing_and_corrupt_checkpoints_raise_with_the_cpp_message(tmp_path):
    model = make_model()
    with pytest.raises(l2o.Error, match="does not exist"):
        l2o.optim.Learned(model.parameters(), tmp_path / "none.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(l2o.Error, match="corrupt"):
        l2o.optim.Learned(model.parameters(), bad)
    with pytest.raises(l2o.Error, match="corrupt"):
        l2o.checkpoint_info(bad)
    assert issubclass(l2o.Error, RuntimeError)


def test_bad_spec_raises():
    with pytest.raises(l2o.Error, match="unknown optimizer 'nosuch'"):
        l2o.optim.Rule(make_model().parameters(), "nosuch")
    with pytest.raises(l2o.Error, match="not a number"):
        l2o.optim.Rule(make_model().parameters(), "adam:lr=x")


def test_checkpoint_metadata_and_shipped_checkpoints():
    info = l2o.checkpoint_info(HRNN)
    assert info["format"] == 1
    assert info["rule"].startswith("hrnn")
    assert isinstance(info["trainer"], dict)
    path = l2o.shipped_checkpoint("hrnn_mnist.pt")
    assert pathlib.Path(path).is_file() and l2o.checkpoint_info(path) == info
    with pytest.raises(l2o.Error, match="no shipped checkpoint 'nope.pt'.*hrnn_mnist.pt"):
        l2o.shipped_checkpoint("nope.pt")


def test_overridden_options_clip_the_learned_rates():
    # The same φ under max_log_lr=-5: the spec says so, and every per-coordinate log learning rate in
    # its state stays at or below the clip (new_log_lr mixes the old value and the clipped step_log_lr).
    model = make_model()
    opt = l2o.optim.Learned(model.parameters(), HRNN, overrides="max_log_lr=-5")
    assert "max_log_lr=-5" in opt.rule
    assert "max_log_lr=33" in l2o.optim.Learned(make_model().parameters(), HRNN).rule
    train(model, opt, batches(30))
    rates = torch.cat([t.flatten() for t in opt.state_dict()["state"]["slots"]["log_lr"]])
    assert rates.max().item() <= -5 + 1e-6
    with pytest.raises(l2o.Error, match="no_such_option"):
        l2o.optim.Learned(make_model().parameters(), HRNN, overrides="no_such_option=1")


_PROBE = """
import ctypes, sys, torch, l2o
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = M
l2o.optim.Rule([torch.nn.Parameter(torch.zeros(3))], "adam:lr=1e-3")
before = libc.mallinfo2().hblkhd
x = torch.ones(16 << 20)  # 64 MB, above glibc's largest mmap threshold (32 MB)
mapped = libc.mallinfo2().hblkhd - before
del x
print(mapped, libc.mallinfo2().fordblks)
"""


def test_building_an_optimizer_keeps_freed_memory_in_the_process():
    # A fresh interpreter each time: the setting is process-wide. With it, 64 MB come from the heap and
    # stay there when freed; with L2O_OS_MALLOC=1, glibc maps them fresh.
    def probe(**env):
        out = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, **env}, check=True,
                             capture_output=True, text=True).stdout.split()
        return int(out[0]), int(out[1])

    mapped, free_in_heap = probe()
    assert mapped < 16 << 20 and free_in_heap >= 64 << 20
    mapped, _ = probe(L2O_OS_MALLOC="1")
    assert mapped >= 64 << 20


_THREADS_PROBE = """
import ctypes, torch, l2o
torch.mm(torch.ones(64, 64), torch.ones(64, 64))
blas = ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads
print(l2o.set_threads(2), torch.get_num_threads(), blas(), l2o.set_threads(0), torch.get_num_threads())
"""


def test_set_threads_sets_the_pool_and_keeps_openblas_at_one():
    # A fresh interpreter: thread counts are process-wide.
    out = subprocess.run([sys.executable, "-c", _THREADS_PROBE], check=True, capture_output=True,
                         text=True).stdout.split()
    assert [int(v) for v in out] == [1, 2, 1, 1, 2]
