"""Property-based fuzzing of the config readers (issue #24, "Done when"): random ``--set`` overrides, random nested
dicts and random YAML bytes end in a valid :class:`Config` or a :class:`GankitError`, never in another exception and
never in a hang. Nothing is trained: only load_config, read_yaml, from_dict and apply_override run.

Repeatable and bounded: examples are derandomized (the same ones on every run, no example database), each property
has a fixed ``max_examples``, and each example a deadline and an alarm that turns a hang into a failure.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
from contextlib import contextmanager
from datetime import timedelta

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis comes with the test extra")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gankit import components  # noqa: E402, F401  (fills the registries)
from gankit.config import (Config, DataConfig, HealthConfig, OptimConfig, TrainConfig, apply_override,  # noqa: E402
                           from_dict, load_config, read_yaml, save_config, to_dict)
from gankit.errors import GankitError  # noqa: E402
from gankit.registry import MODELS, RECIPES  # noqa: E402

HANG_SECONDS = 10  # one example of these takes milliseconds


def fuzz(max_examples: int):
    """Repeatable, bounded settings: the same examples on every run, none stored, each with a deadline."""
    return settings(max_examples=max_examples, deadline=timedelta(seconds=2), derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Raise in the test (a failure, not a stuck CI job) if the body runs longer than ``seconds``."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise AssertionError(f"hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(make) -> Config | None:
    """``make()`` under the alarm: a Config, or None when it raised a GankitError; anything else fails the test."""
    with no_hang():
        try:
            cfg = make()
        except GankitError as exc:
            assert "\n" not in str(exc), str(exc)  # the CLI prints it as one line
            event("refused")  # shown by --hypothesis-show-statistics
            return None
    assert isinstance(cfg, Config)
    event("a valid config")
    return cfg


# -- what to throw ------------------------------------------------------------------------------------------------


def _known_keys() -> list[str]:
    classes = [("data", DataConfig), ("optim", OptimConfig), ("train", TrainConfig), ("health", HealthConfig)]
    classes += [("model", MODELS.meta(n)["config"]) for n in MODELS.names()]
    classes += [("recipe", RECIPES.meta(n)["config"]) for n in RECIPES.names()]
    return sorted({f"{section}.{f.name}" for section, cls in classes for f in dataclasses.fields(cls)})


KNOWN_KEYS = _known_keys()
NAMES = [f"model.name={n}" for n in MODELS.names()] + [f"recipe.name={n}" for n in RECIPES.names()]
AWKWARD = [10**30, -(10**30), 2**63, 2**64 + 1, -1, 0, 1, 4096, 4097, math.nan, math.inf, -math.inf, 1e-320,
           "1:00", "yes", "off", ".inf", "~nosuchuser/x", "0o17", "1e9", "", "\x00", "a\nb", "cuda:99", "meta"]
AWKWARD_TEXT = ["1:00", "-1:30:00", ".nan", "-.inf", "1e400", "0x" + "f" * 40, "{a: 1, a: 2}",
                "[1, [2, [3, [4]]]]", "&a [1, 2]", "*a", "!!python/object/apply:os.system [ls]", "!!binary aGk=",
                "!!int 1:00", "!!bool maybe", "!!float x", "!!timestamp 2020-01-01", "? [a]\n: 1", "a: b: c",
                "- a\n- b", "---\n---", "%YAML 1.1\n--- 1", "~", "null", "true", "\t", "'", '"\\x"', "\udcff",
                "\ufeff1", "<<: {a: 1}"]

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(AWKWARD) | st.builds(pow, st.just(10), st.sampled_from([400, 5000])))  # no repr: built
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _as_text(value) -> str:
    """A value as a user might type it after ``=``: JSON (a YAML subset) where it can be written, else str()."""
    try:
        return json.dumps(value, allow_nan=True)
    except ValueError:  # an integer past Python's 4,300 digits: write one out
        return "1" + "0" * 5000


keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12) | st.builds("{}.{}".format, st.sampled_from(
    ["data", "model", "recipe", "optim", "train", "health", "nope"]), st.text(max_size=8))
long_texts = st.builds(str.__mul__, st.sampled_from(["[", "9", "{a: ", "- ", "&a [*a, "]),
                       st.sampled_from([50, 5000, 50_000]))
texts = values.map(_as_text) | st.text(max_size=30) | st.sampled_from(AWKWARD_TEXT) | long_texts
overrides = st.sampled_from(NAMES) | st.builds("{}={}".format, keys, texts) | st.text(max_size=20)


# -- the properties -----------------------------------------------------------------------------------------------


@fuzz(max_examples=400)
@given(items=st.lists(overrides, max_size=6))
def test_random_overrides_give_a_config_or_one_line(items, tmp_path_factory):
    cfg = outcome(lambda: load_config(None, items))
    if cfg is not None:  # a config that loads is one a run can be rebuilt from: it survives a YAML round trip
        assert from_dict(to_dict(cfg)) == cfg
        path = tmp_path_factory.getbasetemp() / "fuzz_config.yaml"
        save_config(cfg, path)
        assert load_config(path) == cfg


@fuzz(max_examples=300)
@given(raw=st.dictionaries(st.sampled_from(["data", "model", "recipe", "optim", "train", "health"]) | scalars,
                           st.dictionaries(st.sampled_from([k.split(".")[1] for k in KNOWN_KEYS]) | scalars, values,
                                           max_size=4) | values, max_size=4))
def test_random_dicts_give_a_config_or_one_line(raw):
    outcome(lambda: from_dict(raw))


@fuzz(max_examples=200)
@given(base=st.dictionaries(st.text(max_size=6), values, max_size=3), item=overrides)
def test_an_override_on_any_dict_is_applied_or_refused(base, item):
    def apply():
        apply_override(base, item)
        return from_dict(base)

    outcome(apply)


FRAGMENTS = ["train:", "model:", "recipe:", "data:", "optim:", "\n", "  ", "    ", "steps: ", "name: ", "dcgan",
             "pix2pix", "g_hidden: ", "lr_g: ", "root: ", "1", "1:00", "1e9", "-3", "[", "]", "{", "}", ", ", ": ",
             "- ", "? ", "&a ", "*a ", "!!python/object:os.system ", "!!binary ", "!!int ", "!!set ", "!foo ", "---\n",
             "...\n", '"', "'", "\\x41", "\\", "\t", "# c", "%YAML 1.1\n", "%TAG ! tag:x.org,2000:\n", "<<: ", ".nan",
             ".inf", "~", "null", "yes", "\x00", "\x85", "\u2028", "\ufeff", "é", "9" * 400, "[" * 40]
yaml_bytes = (st.binary(max_size=300)
              | st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(lambda parts: "".join(parts).encode())
              | long_texts.map(str.encode)
              | st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=30).map(
                  lambda parts: "".join(parts).encode("utf-8", "surrogatepass")))


@fuzz(max_examples=400)
@given(data=yaml_bytes)
def test_random_yaml_bytes_give_a_config_or_one_line(data, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "fuzz_bytes.yaml"
    path.write_bytes(data)
    outcome(lambda: from_dict(read_yaml(path)))
    outcome(lambda: load_config(path, ["train.steps=3"]))
