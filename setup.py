"""Build the optional C core of the L2 book (``tickhawk.book._l2core``).

Everything else is in ``pyproject.toml``. Without Cython or a C compiler the
package still installs and ``tickhawk.book.l2`` uses its pure-Python book.
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # built without the declared build requirements: pure Python only
    extensions = []
else:
    extensions = cythonize(
        [Extension("tickhawk.book._l2core", ["src/tickhawk/book/_l2core.pyx"])],
        compiler_directives={"language_level": "3"},
    )
    for extension in extensions:
        extension.extra_compile_args = ["-O3"]
        extension.optional = True  # no compiler: a warning, and the pure-Python book

setup(ext_modules=extensions)
