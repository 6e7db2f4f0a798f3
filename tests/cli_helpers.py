"""What the bad-input tests share: a tiny digits GAN's overrides, its `gankit train` command line, and the check
that a user's mistake ends in exactly one `gankit: error:` line with exit code 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

from gankit.cli import main

TINY = ["model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.steps=2",
        "train.batch_size=4", "train.progress=false", "train.eval_every=0"]


def train_args(out: Path, *overrides: str) -> list[str]:
    """``gankit train --out OUT`` with TINY and ``overrides`` as --set items."""
    args = ["train", "--out", str(out)]
    for item in [*TINY, *overrides]:
        args += ["--set", item]
    return args


def one_line_error(capsys, argv: list[str], *words: str) -> str:
    """Run the CLI on ``argv``: exit code 2, one line on stderr starting ``gankit: error:`` and holding ``words``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error:") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err
