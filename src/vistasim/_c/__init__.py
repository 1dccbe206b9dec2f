"""Compiled accelerators (Cython sources, built by ``pip install -e .``; see ``setup.py``).

Each module here has a pure-Python twin elsewhere in the package that gives the same answers;
:mod:`vistasim._accel` picks the compiled one when it was built and not switched off.
"""

#: The accelerators vistasim knows (module names under vistasim._c).
NAMES: tuple[str, ...] = ("fhirc", "uuid5", "zwrc")

#: The interface version the package expects of an accelerator that declares ``PROTOCOL``: a build of an
#: older .pyx (an in-place build not redone after an update) is then not used, and the twin runs.
PROTOCOLS: dict[str, int] = {"zwrc": 1}
