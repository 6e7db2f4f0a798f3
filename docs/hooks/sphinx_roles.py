"""MkDocs hook: drop the Sphinx role prefixes (``:func:``, ``:class:``, ...) that gankit's docstrings put before a
name, so the API reference shows the name in code style rather than ``:func:train``."""

import re

# After Markdown rendering, :func:`train` has become ":func:<code>train</code>".
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc|const):(?=<code>)")


def on_page_content(html: str, **_kwargs) -> str:
    """Return the page's HTML with the role prefixes removed."""
    return _ROLE.sub("", html)
