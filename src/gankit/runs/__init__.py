"""Looking at runs: the run list (``gankit runs``), curves (``gankit plot``) and the HTML report (``gankit report``),
all read from the files a run directory holds (:mod:`gankit.runs.run`)."""
