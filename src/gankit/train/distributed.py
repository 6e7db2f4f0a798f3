"""Data-parallel training across the processes ``torchrun`` starts: gloo on CPUs, NCCL on GPUs.

    torchrun --nproc-per-node 2 -m gankit train configs/dcgan_mnist.yaml --out runs/ddp

How a step is split. ``train.batch_size`` is the *global* batch: with W processes each computes its losses on
B / W samples. Every rank keeps the same data sampler and noise generator (same seed, same state), draws the global
batch's indices and noise, and keeps its own rows ``[r B/W, (r+1) B/W)`` (:func:`shard_rows`, used by the sampler
and by every random draw inside a training step). Before each optimizer update the gradients are averaged over the
ranks in one all-reduce (an optimizer pre-step hook), so every rank makes the update that one process would make
with the whole batch, and the weights stay identical everywhere. Buffers (batch-norm running statistics, spectral
norm's vectors) are broadcast from rank 0 after every step, as DistributedDataParallel does before each forward.

Why not wrap the networks in ``torch.nn.parallel.DistributedDataParallel``: a GAN step runs D several times before
one backward (real and fake batches), freezes the player that is not learning (DDP's reducer expects a gradient for
every parameter that required one when it was built), and differentiates twice for WGAN-GP and R1, which DDP does
not support. Averaging gradients explicitly before each update, as StyleGAN2-ADA's training loop does, gives DDP's
result for all of these. Compared with DDP, the all-reduce does not overlap the backward pass; on the small models of
this toolkit the communication is a small share of a step.

Because every rank holds the whole sampler and noise state, a checkpoint does not depend on the number of
processes: a run saved with 4 ranks resumes on 1 or 2 (``train.batch_size`` must divide by the world size), and
draws the same batches. Rank 0 alone writes the run directory (config, metrics, grids, evaluations, checkpoints)
and prints; a SIGTERM/SIGINT or ``train.max_minutes`` stops every rank after the same step (the ranks agree after
every step, on a gloo group even when the gradients go through NCCL, so no GPU sync is added), and the logged losses
are averaged across the ranks at each log row.

Batch norm computes its statistics per rank unless ``train.sync_bn=true`` converts it to a synchronised batch norm
(``torch.nn.SyncBatchNorm`` on GPUs; :class:`GlobalBatchNorm` on CPUs, where torch's is not available), whose
statistics cover the global batch, so that 2 x B/2 computes what 1 x B does.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError, GankitError
from ..shard import Shard, shard_rows, sharded, sharding  # noqa: F401  (re-exported)
from .precision import use_channels_last


class Distributed:
    """The process group of a ``torchrun`` launch, or a single process (``world == 1``, every call a no-op)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, control=None) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.control = control  # a gloo group for the per-step stop flags, so that NCCL runs never sync the GPU

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), once per process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_available():
            raise GankitError("WORLD_SIZE > 1 but this build of torch has no torch.distributed")
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            kwargs = {"device_id": device} if device.type == "cuda" else {}
            dist.init_process_group(backend, timeout=timedelta(minutes=30), **kwargs)
        control = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, control)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.world)

    def local_batch(self, batch_size: int) -> int:
        """Each rank's share of the global ``train.batch_size``."""
        if batch_size % self.world:
            raise ConfigError(f"train.batch_size={batch_size} must be divisible by the number of processes "
                              f"({self.world}): each computes batch_size / {self.world} samples of a step")
        return batch_size // self.world

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_module(self, module: nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's parameters and buffers (only buffers with ``buffers_only``) to every rank, one broadcast
        per dtype."""
        if not self.active:
            return
        tensors = [] if buffers_only else [p.data for p in module.parameters()]
        tensors += [b for b in module.buffers() if b.numel()]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            dist.broadcast(flat, src=0)
            offset = 0
            for t in group:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()

    def average_gradients_before_steps(self, optimizer: torch.optim.Optimizer) -> None:
        """Make every ``optimizer.step()`` first average the gradients of its parameters over the ranks (one
        all-reduce of the flattened gradients; parameters without a gradient, frozen ones, are left out alike on
        every rank)."""
        if not self.active:
            return
        world = self.world

        def average(opt, args, kwargs):
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            if not grads:
                return
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat.div_(world)
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

        optimizer.register_step_pre_hook(average)

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Average scalar tensors over the ranks (the same keys, in the same order, on every rank)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
        dist.all_reduce(stacked)
        stacked.div_(self.world)
        return dict(zip(keys, stacked.unbind()))

    def any_of(self, flags: list[bool]) -> list[bool]:
        """Each flag True on every rank when it is True on at least one (one all-reduce of a CPU tensor)."""
        if not self.active:
            return list(flags)
        t = torch.tensor([1.0 if f else 0.0 for f in flags])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return [bool(v) for v in t.tolist()]

    def place(self, modules: dict[str, nn.Module], device: torch.device, sync_bn: bool = False,
              channels_last: bool = False) -> dict[str, nn.Module]:
        """Modules on ``device``, in training mode, identical on every rank (with ``sync_bn``, batch norm over the
        global batch; with ``channels_last``, convolutional modules in that memory format)."""
        if sync_bn and self.active:
            modules = {k: convert_sync_batchnorm(m, device) for k, m in modules.items()}
        for module in modules.values():
            module.to(device).train()
            self.broadcast_module(module)  # identical already (same seed); made certain, as DDP does
        if channels_last:
            use_channels_last(modules)
        return modules

    def on_main(self, work):
        """``work()`` on rank 0 (None elsewhere); if it raises, every rank raises, so that no rank waits for a
        rank 0 that has stopped (rank 0 raises the original error, the others a pointer to it)."""
        failure, result = None, None
        if self.is_main:
            try:
                result = work()
            except GankitError as exc:
                failure = exc
        (failed,) = self.any_of([failure is not None])
        if failure is not None:
            raise failure
        if failed:
            raise GankitError("stopping: rank 0 failed (its message says why)")
        return result


# -------------------------------------------------------------------------------------------------------------------
# Batch norm over the global batch

class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the samples of every rank (any backend; gloo included).

    The per-channel sum, sum of squares and count are all-reduced with ``torch.distributed.nn``'s differentiable
    all-reduce, so gradients flow through the global statistics as they would through one process's. Its state
    dict matches ``nn.BatchNorm{1,2}d``'s: checkpoints move freely between the two."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device, dtype=torch.float32)
        stats = torch.cat([x.float().sum(dims), x.float().pow(2).sum(dims), count.reshape(1)])
        stats = all_reduce(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)  # biased, for normalising
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every batch norm in ``module`` by one synchronised over the process group (weights kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out
