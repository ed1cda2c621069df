"""The one compiled part of nnbackend: ``nnbackend/_fused.c``, one-pass kernels for NumPy (Adam, Dense's
bias + ReLU, ReLU's backward mask).

Everything else is configured in pyproject.toml. The module is optional: without a C compiler the
install still succeeds and the engine runs NumPy's chains of passes (same values, slower);
``nnbackend backends`` says which path is in use.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# IEEE arithmetic exactly as written (no fused multiply-adds, no fast-math), so the kernel matches NumPy
# bit for bit; -fno-math-errno only lets sqrt vectorise (errno is never read).
GCC_LIKE = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
FLAGS = {"msvc": ["/O2", "/fp:precise"], "unix": GCC_LIKE, "mingw32": GCC_LIKE, "cygwin": GCC_LIKE}


class BuildFused(build_ext):
    def build_extensions(self) -> None:
        flags = FLAGS.get(self.compiler.compiler_type, [])
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("nnbackend._fused", ["nnbackend/_fused.c"], optional=True)],
    cmdclass={"build_ext": BuildFused},
)
