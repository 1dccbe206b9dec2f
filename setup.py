"""Build the optional compiled accelerators (Cython) next to the pure-Python package.

Everything lives in pyproject.toml except the extension modules, which setuptools can only be given here.
Each accelerator is ``optional``: where no C compiler is found the install still succeeds and vistasim runs
its pure-Python path, which gives the same results, only slower (``vistasim._accel`` says which is in use).
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # a build without the declared build requirements: pure Python only
    cythonize = None

# module name -> its .pyx source (one line per accelerator)
ACCELERATORS: dict[str, str] = {
    "vistasim._c.fhirc": "src/vistasim/_c/fhirc.pyx",
    "vistasim._c.uuid5": "src/vistasim/_c/uuid5.pyx",
    "vistasim._c.zwrc": "src/vistasim/_c/zwrc.pyx",
}

extensions = [Extension(name, [src], optional=True) for name, src in ACCELERATORS.items()]
setup(ext_modules=cythonize(extensions, language_level=3, quiet=True) if cythonize and extensions else [])
