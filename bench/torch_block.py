"""Time the training iterations of one Annealing Flow block written with PyTorch.

This is the comparison side of bench/vs-pytorch; bench/bench_block.c times
afm's trainer on the same block. Both train one block at beta = 1 with the
same settings: a velocity MLP d-32-32-d with softplus of sharpness 20, unit
time in 3 RK4 steps, batch 1000 drawn from a training set of 100,000 N(0, I)
points, the loss

    mean[ -log f(x_S) - integral of div v + w2_weight * S * sum_s |x_s - x_(s-1)|^2 ]

with log f = (1 - beta) log N(x; 0, I) + beta log q, back-propagated through
every RK4 stage, then global gradient-norm clipping to 1 and an Adam step
with afm's cosine step-size decay. The divergence is by default a
Hutchinson estimate with one Gaussian probe per RK4 step (shared by its four
stages), its vector-Jacobian product taken by autograd with
create_graph=True, the usual way to train a continuous flow in PyTorch.
With --divergence exact it is afm's closed form for a two-hidden-layer MLP,
which autograd then differentiates once.

What is timed: from the end of the warm-up (the first tenth of the
iterations) to the last iteration, each drawing a batch, integrating it,
evaluating the target, back-propagating and stepping Adam. Building the
training set and the network is not timed. Prints one line of key=value
figures on stdout. Run it with the Python that has torch (Debian's
python3-torch installs for /usr/bin/python3).
"""

import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

CIRCLE_MODES = 6
CIRCLE_RADIUS = 8.0
EXP_GAUSS_COORDS = 10
EXP_GAUSS_WEIGHT = 10.0


def circle_logq(x):
    """Log-density (unnormalised) of equal-weight unit Gaussians on a circle of radius 8."""
    angles = torch.arange(CIRCLE_MODES, dtype=x.dtype) * (2.0 * math.pi / CIRCLE_MODES)
    means = CIRCLE_RADIUS * torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    sq = ((x[:, None, :2] - means) ** 2).sum(dim=2)
    return torch.logsumexp(-0.5 * sq, dim=1) - 0.5 * (x[:, 2:] ** 2).sum(dim=1)


def exp_gauss_logq(x):
    """Log-density of the exp-weighted Gaussian with 2^10 modes (unnormalised)."""
    weighted = EXP_GAUSS_WEIGHT * x[:, :EXP_GAUSS_COORDS].abs().sum(dim=1)
    return weighted - 0.5 * (x**2).sum(dim=1)


TARGETS = {"circle": circle_logq, "exp_gauss": exp_gauss_logq}


class Velocity(torch.nn.Module):
    """The velocity field v(y) = W3 softplus(W2 softplus(W1 y + b1) + b2) + b3."""

    def __init__(self, d, hidden, sharpness):
        super().__init__()
        self.sharpness = sharpness
        self.layer1 = torch.nn.Linear(d, hidden)
        self.layer2 = torch.nn.Linear(hidden, hidden)
        self.layer3 = torch.nn.Linear(hidden, d)
        # afm's initialisation: scaled normal hidden weights, zero biases and a
        # zero output layer, so that the block starts as the identity map.
        with torch.no_grad():
            self.layer1.weight.normal_(0.0, 1.0 / math.sqrt(d))
            self.layer2.weight.normal_(0.0, 1.0 / math.sqrt(hidden))
            for layer in (self.layer1, self.layer2, self.layer3):
                layer.bias.zero_()
            self.layer3.weight.zero_()

    def forward(self, y):
        h = F.softplus(self.layer1(y), beta=self.sharpness)
        h = F.softplus(self.layer2(h), beta=self.sharpness)
        return self.layer3(h)

    def forward_with_divergence(self, y):
        """Return v(y) and its exact divergence, the formula afm uses.

        tr(W3 D2 W2 D1 W1) = s2' (W2 .* (W1 W3)') s1, with s1, s2 the
        softplus derivatives (sigmoids) at the two hidden layers.
        """
        a1 = self.layer1(y)
        h = F.softplus(a1, beta=self.sharpness)
        a2 = self.layer2(h)
        h = F.softplus(a2, beta=self.sharpness)
        coupling = self.layer2.weight * (self.layer1.weight @ self.layer3.weight).T
        s1 = torch.sigmoid(self.sharpness * a1)
        s2 = torch.sigmoid(self.sharpness * a2)
        return self.layer3(h), (s2 * (s1 @ coupling.T)).sum(dim=1)


def velocity_and_divergence(net, y, probe):
    """Return v(y) and the Hutchinson estimate probe' (dv/dy) probe of div v(y),
    or the exact divergence when PROBE is None."""
    if probe is None:
        return net.forward_with_divergence(y)
    v = net(y)
    (vjp,) = torch.autograd.grad(v, y, probe, create_graph=True)
    return v, (vjp * probe).sum(dim=1)


def block_loss(net, x0, beta, logq_fn, substeps, path_weight, hutchinson=True):
    """Return the mean block loss over the batch X0, differentiable in the weights."""
    h = 1.0 / substeps
    offsets = (0.0, 0.5 * h, 0.5 * h, h)
    rk4_weights = (1.0, 2.0, 2.0, 1.0)
    x = x0.requires_grad_(hutchinson)  # the probes need derivatives in the stage inputs
    logdet = torch.zeros(x0.shape[0], dtype=x0.dtype)
    path = torch.zeros_like(logdet)

    for _ in range(substeps):
        probe = torch.randn_like(x) if hutchinson else None  # one per step, for four stages
        step = torch.zeros_like(x)
        div_sum = torch.zeros_like(logdet)
        k = None
        for offset, weight in zip(offsets, rk4_weights):
            y = x if k is None else x + offset * k
            k, div = velocity_and_divergence(net, y, probe)
            step = step + weight * k
            div_sum = div_sum + weight * div
        step = (h / 6.0) * step
        logdet = logdet + (h / 6.0) * div_sum
        path = path + (step**2).sum(dim=1)
        x = x + step

    log_f = beta * logq_fn(x) - 0.5 * (1.0 - beta) * (x**2).sum(dim=1)
    return (-log_f - logdet + path_weight * path).mean()


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="circle")
    parser.add_argument("--dim", type=int, default=2, help="dimension d")
    parser.add_argument("--iterations", type=int, default=200,
                        help="Adam iterations; the first tenth is the untimed warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads value")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--train-size", type=int, default=100000)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--divergence", choices=("hutchinson", "exact"), default="hutchinson",
                        help="Hutchinson estimate by autograd, or afm's closed form")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.target == "circle" and args.dim < 2:
        parser.error("the circle target needs --dim of at least 2")
    if min(args.dim, args.threads, args.batch) < 1 or args.train_size < args.batch:
        parser.error("--dim, --threads and --batch must be positive, --train-size at least --batch")
    if args.iterations < 20:
        parser.error("--iterations must be at least 20 so that the timed part spans several")
    return args


def main(argv):
    args = parse_arguments(argv)
    # afm's defaults: widths 32, sharpness 20, 3 RK4 steps, W2 weight 0.01,
    # step size 2e-3 decaying to 0.1 of it, gradient norm clipped to 1.
    hidden, sharpness, substeps = 32, 20.0, 3
    path_weight = 0.01 * substeps
    learning_rate, clip_norm, beta = 2e-3, 1.0, 1.0

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype)
    torch.set_default_dtype(dtype)

    logq_fn = TARGETS[args.target]
    train = torch.randn(args.train_size, args.dim)
    net = Velocity(args.dim, hidden, sharpness)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    warm_up = args.iterations // 10
    losses = []

    for it in range(args.iterations):
        if it == warm_up:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
        fraction = it / args.iterations
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (0.55 + 0.45 * math.cos(math.pi * fraction))

        batch = train[torch.randint(args.train_size, (args.batch,))]
        loss = block_loss(net, batch, beta, logq_fn, substeps, path_weight,
                          args.divergence == "hutchinson")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
        optimizer.step()
        losses.append(loss.item())

    wall = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    timed = args.iterations - warm_up
    print(f"torch target={args.target} d={args.dim} threads={args.threads} batch={args.batch} "
          f"dtype={args.dtype} divergence={args.divergence} timed_iterations={timed} "
          f"wall_s_per_iter={wall / timed:.6g} cpu_s_per_iter={cpu / timed:.6g} "
          f"loss_first={sum(losses[:warm_up]) / warm_up:.6g} "
          f"loss_last={sum(losses[-warm_up:]) / warm_up:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
