"""Train a torch.nn model with the learned optimizer shipped with l2o (mlp_lopt_generalist.pt, the
per-parameter MLP optimizer meta-trained on a distribution of MLPs and convnets), next to Adam:

    PYTHONPATH=build/python /usr/bin/python3 examples/train_with_learned_optimizer.py [steps]
"""
import sys

import torch

import l2o


def train(make_optimizer, steps):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = make_optimizer(model.parameters())
    data = torch.Generator().manual_seed(1)
    for step in range(steps + 1):
        x = torch.randn(64, 3, generator=data)
        y = torch.sin(x.sum(1, keepdim=True))

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        if step % (steps // 4) == 0:
            print(f"  step {step:4d}  loss {loss.item():.5f}")
    return loss.item()


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    checkpoint = l2o.shipped_checkpoint("mlp_lopt_generalist.pt")
    print(f"l2o {l2o.__version__}; learned optimizer {checkpoint}: {l2o.checkpoint_info(checkpoint)['rule'].split(':')[0]}")
    print("learned (l2o.optim.Learned)")
    learned = train(lambda ps: l2o.optim.Learned(ps, checkpoint), steps)
    print("Adam (torch.optim, lr 0.01)")
    adam = train(lambda ps: torch.optim.Adam(ps, lr=0.01), steps)
    print(f"final loss: learned {learned:.5f}, Adam {adam:.5f}")


if __name__ == "__main__":
    main()
