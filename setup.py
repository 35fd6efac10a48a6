"""Build sleigh: pure-Python packages under ``sleigh.*`` plus the Cython core.

Every source is named under ``sleigh/`` (whose ``daemons``, ``core_ext`` and
``webapp`` are relative links to the top-level folders), so plain, editable
and sdist -> wheel installs all see one namespace.
"""

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

extensions = [
    Extension("sleigh.core_ext._tokenizer", ["sleigh/core_ext/_tokenizer.pyx"]),
    Extension("sleigh.core_ext._resp", ["sleigh/core_ext/_resp.pyx"]),
    Extension("sleigh.core_ext._throttle", ["sleigh/core_ext/_throttle.pyx"]),
    Extension("sleigh.core_ext.search._engine", ["sleigh/core_ext/search/_engine.pyx"]),
    Extension("sleigh.core_ext.search._build", ["sleigh/core_ext/search/_build.pyx"]),
]

setup(
    packages=find_packages(include=["sleigh", "sleigh.*"]),
    package_data={
        "sleigh": ["py.typed", "systemd/*"],
        "sleigh.core_ext": ["*.pyx", "*.pxd", "*.pyi", "*.h", "*.c"],
        "sleigh.core_ext.search": ["*.pyx", "*.pxd", "*.pyi", "*.h", "*.c"],
        "sleigh.webapp": [
            "templates/*.mako",
            "templates/*/*.mako",
            "templates/sections/*/*.mako",
            "static/*",
            "static/*/*",
        ],
        "sleigh.webapp.db": ["migrations/*.ini", "migrations/*.mako", "migrations/*.py"],
        "sleigh.webapp.db.migrations": ["versions/*.py", "script.py.mako"],
    },
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"embedsignature": True, "boundscheck": False, "wraparound": False},
    ),
    cffi_modules=[
        "sleigh/core_ext/_replay_build.py:ffibuilder",
        "sleigh/core_ext/_mmsg_build.py:ffibuilder",
    ],
    zip_safe=False,
)
