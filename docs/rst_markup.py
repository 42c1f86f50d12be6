"""A griffe extension for the API pages: the docstrings' reStructuredText markup as Markdown.

Cross-reference roles (``:class:`~flowcf.flows.Flow```) become code spans (``Flow``), math
(``:math:`x```, ``.. math::`` blocks) becomes arithmatex's ``\\( \\)`` and ``$$`` for MathJax, and
line blocks (``| ...``, the references) become lines.
"""

import re

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`~?([^`]*?)`")
TILDE_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`~[^`]*?\.([^`.]+)`")
INLINE_MATH = re.compile(r":math:`([^`]*)`")
BLOCK_MATH = re.compile(r"^( *)\.\. math:: (.*(?:\n\1 +\S.*)*)", re.MULTILINE)
LINE_BLOCK = re.compile(r"^( *)\| (.*)$", re.MULTILINE)


def markdown(text: str) -> str:
    """``text`` with the reStructuredText markup above replaced by its Markdown equivalent."""
    text = BLOCK_MATH.sub(lambda m: f"{m[1]}$$\n{m[1]}{m[2].strip()}\n{m[1]}$$", text)
    text = INLINE_MATH.sub(r"\\(\1\\)", text)
    text = TILDE_ROLE.sub(r"`\1`", text)
    text = ROLE.sub(r"`\1`", text)
    return LINE_BLOCK.sub(r"\1\2  ", text)


class RstMarkup(griffe.Extension):
    """Rewrites every docstring once it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
