"""The Hugging Face Hub's side of a model folder, through huggingface_hub (``pip install 'gankit[export]'``).

A folder is written by :class:`GankitModel`, a ``ModelHubMixin``: its ``save_pretrained`` lays out the folder as
the library's own models are laid out, and its ``push_to_hub`` uploads it (``gankit export --format hub --push
USER/NAME``; that needs a token and a network). A model is fetched by id, ``hf://USER/NAME[@REVISION]``, with
``snapshot_download``, which reads the local cache when the files are there and reads nothing else under
``HF_HUB_OFFLINE=1``; the folder it returns is read by :func:`gankit.interop.folder.read_model_folder`, as any.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import ModelCard, ModelHubMixin, get_token, snapshot_download

from ..errors import GankitError
from .folder import CARD, FILES, ModelFiles, write_files

PREFIX = "hf://"
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
DOCS = "https://pypi.org/project/gankit/"


class GankitModel(ModelHubMixin, library_name="gankit", tags=["gankit"], docs_url=DOCS):
    """A model folder's files (:class:`~gankit.interop.folder.ModelFiles`) as a Hub model: ``save_pretrained``
    writes them, ``push_to_hub`` uploads them."""

    def __init__(self, files: ModelFiles) -> None:
        self.files = files

    def _save_pretrained(self, save_directory: Path) -> None:
        """config.json, model.safetensors and samples.png; then the card, checked as the Hub parses it."""
        save_directory = Path(save_directory)
        write_files(self.files, save_directory)
        self.generate_model_card().save(save_directory / CARD)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The card gankit wrote (:func:`gankit.interop.card.model_card`), not the mixin's template."""
        return ModelCard(self.files.card)


def save(files: ModelFiles, folder: Path, push: str | None = None) -> str | None:
    """Write the model folder, and with ``push`` (a repository id) upload it; returns the commit's address."""
    model = GankitModel(files)
    model.save_pretrained(folder)
    if push is None:
        return None
    if get_token() is None:
        raise GankitError(f"--push {push}: no Hugging Face token (log in with `hf auth login`, or set HF_TOKEN); "
                          f"the folder {folder} is written: upload it later with `hf upload {push} {folder}`")
    try:
        return str(model.push_to_hub(push, commit_message=f"gankit export: {files.config['config']['model']['name']}"
                                     f" at step {files.config['step']}"))
    except Exception as exc:  # the network's and the Hub's errors have many types; each is one line to the user
        raise GankitError(f"--push {push}: the upload failed ({_one_line(exc)}); the folder {folder} is written: "
                          f"upload it later with `hf upload {push} {folder}`") from None


def check_repo_id(repo: str) -> str:
    """``--push USER/NAME`` checked before anything is computed."""
    if not REPO_ID.fullmatch(repo) or ".." in repo:
        raise GankitError(f"--push {repo!r}: expected a Hugging Face repository id, USER/NAME")
    return repo


def download(ref: str) -> Path:
    """The local folder of ``hf://USER/NAME[@REVISION]``: from the Hub's cache, or downloaded into it (only the
    model folder's files); one line when it cannot be had (offline and not cached, no such repository, ...)."""
    repo, _, revision = ref[len(PREFIX):].partition("@")
    if not REPO_ID.fullmatch(repo) or ".." in repo:
        raise GankitError(f"{ref}: expected hf://USER/NAME or hf://USER/NAME@REVISION")
    try:
        return Path(snapshot_download(repo, revision=revision or None, allow_patterns=list(FILES)))
    except Exception as exc:  # not cached, offline, no such repository or revision, no network: one line each
        raise GankitError(f"cannot fetch {ref}: {_one_line(exc)}") from None


def _one_line(exc: BaseException, width: int = 300) -> str:
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= width else text[:width - 3] + "..."
