"""Hyperparameter sweeps on Optuna (``gankit sweep``): a search space over config keys (:mod:`.space`), trials run
as ordinary ``gankit train`` processes and watched through their files (:mod:`.runner`), the study and its workers
(:mod:`.study`), and what a sweep found (:mod:`.show`). Optuna is an optional extra: ``pip install
'gankit[sweep]'``.

The package is named ``sweeps`` so that ``gankit.sweep`` stays the API function: importing a subpackage of the same
name would put the module in its place.
"""
