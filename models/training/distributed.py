"""Data-parallel training across processes started by ``torchrun`` (NCCL on GPUs, gloo on CPUs).

Gradients are averaged with one flattened all-reduce per optimiser step, as NVIDIA's StyleGAN3
training loop does, instead of wrapping the networks in ``DistributedDataParallel``: the GAN
losses call ``mapping``/``synthesis`` directly and take second derivatives (R1, path length),
which DDP's forward hooks do not cover. The effect is the same: every process holds identical
weights and applies the same averaged gradient.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True, slots=True)
class DistContext:
    """This process's place in the group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and reports progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    def local_batch(self, batch_size: int) -> int:
        """This process's share of a step's ``batch_size`` images (all processes together).

        Raises:
            ValueError: ``batch_size`` does not split evenly over the processes.
        """
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {self.world_size} processes"
            )
        return batch_size // self.world_size

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes (returned on the tensor's own device)."""
        if not self.enabled:
            return tensor
        work = tensor.detach().to(self._comm_device()).clone()
        dist.all_reduce(work, op=dist.ReduceOp.SUM)
        return work.to(tensor.device)

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Rank ``src``'s value of ``tensor`` on every process."""
        if not self.enabled:
            return tensor
        work = tensor.detach().to(self._comm_device()).clone()
        dist.broadcast(work, src)
        return work.to(tensor.device)

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor`` (same shape everywhere), in rank order."""
        if not self.enabled:
            return [tensor]
        work = tensor.detach().to(self._comm_device()).contiguous()
        out = [torch.empty_like(work) for _ in range(self.world_size)]
        dist.all_gather(out, work)
        return [item.to(tensor.device) for item in out]

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over processes (missing = zero)."""
        if not self.enabled:
            return
        params = [p for p in parameters if p.requires_grad]
        if not params:
            return
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        )
        flat = self.all_reduce_sum(flat).div_(self.world_size)
        offset = 0
        for p in params:
            count = p.numel()
            p.grad = flat[offset : offset + count].view_as(p).clone()
            offset += count

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                tensor.copy_(self.broadcast(tensor))

    def barrier(self) -> None:
        """Wait for every process."""
        if self.enabled:
            dist.barrier()


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1), else do nothing.

    Args:
        device: the device asked for; with CUDA each process takes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
