"""Rolling a run back after a NaN or Inf: to its latest checkpoint, retried with ``health.remedy`` (``lower_lr``:
every learning rate times ``health.lr_factor``; ``skip``: the failed attempt's batches and noise are skipped), until
``health.retries`` rollbacks over the whole run; then the run stops with a report naming the last good checkpoint.
Every rollback and the stop are rows of ``metrics.jsonl``."""

from __future__ import annotations

from ..errors import GankitError
from .checkpoint import latest_checkpoint
from .log import LogWindow, say
from .schedule import scale_base_lr


def roll_back(trainer, reason: str) -> None:
    """Restore ``trainer`` (a :class:`~gankit.train.trainer.Trainer`) to its latest checkpoint and apply the remedy,
    or raise with a report once the retries are spent."""
    hc, failed_step = trainer.cfg.health, trainer.step
    trainer.retries += 1
    if hc.on_nonfinite == "stop" or trainer.retries > hc.retries:
        trainer.log.write({"step": failed_step, "event": "stopped", "reason": reason,
                           "rollbacks": trainer.retries - 1})
        trainer.dist.barrier()  # rank 0 has written the row before any rank exits
        good = latest_checkpoint(trainer.run_dir)
        raise GankitError(f"{reason} at step {failed_step}; stopped after {trainer.retries - 1} rollback(s) "
                          f"(health.retries={hc.retries}). The last good checkpoint is {good}: lower optim.lr_g "
                          "and optim.lr_d, try another recipe.loss, or raise health.retries, then --resume")
    skipped = (trainer.sampler.state_dict(), trainer.noise.get_state()) if hc.remedy == "skip" else None
    retries = trainer.retries
    trainer.dist.barrier()  # rank 0 has finished writing the checkpoint every rank now reads
    trainer.restore(latest_checkpoint(trainer.run_dir))
    trainer.retries = retries  # the count covers the whole run, not only up to the restored checkpoint
    if skipped is not None:  # go on from where the failed attempt was: its batches and noise are skipped
        trainer.sampler.load_state_dict({k: v.clone() for k, v in skipped[0].items()})
        trainer.noise.set_state(skipped[1])
    else:
        for opt in trainer.recipe.optimizers.values():
            scale_base_lr(opt, hc.lr_factor)
    trainer.window = LogWindow()
    lrs = {name: opt.param_groups[0]["base_lr"] for name, opt in trainer.recipe.optimizers.items()}
    trainer.log.write({"step": trainer.step, "event": "rollback", "reason": reason, "failed_step": failed_step,
                       "remedy": hc.remedy, "retry": trainer.retries, "lr": lrs})
    say(f"warning: {reason} at step {failed_step}: rolled back to step {trainer.step}, retry "
        f"{trainer.retries}/{hc.retries} with remedy {hc.remedy} (learning rates {lrs})")
