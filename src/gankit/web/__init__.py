"""``gankit serve``: a local web page to play with a trained model (:mod:`gankit.web.app`, the page in
``page.html``)."""
