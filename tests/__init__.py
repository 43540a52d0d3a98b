"""The test suite, a package mirroring the code: ``tests/unit/<package>`` for ``stream/<package>``,
``tests/training`` for ``training``; ``integration``, ``property``, ``stress`` and ``bench`` by kind.
Helpers are imported by their package path (``from tests.integration.workers import consume``),
never through ``sys.path``. (tf2onnx installs a top-level ``tests`` package of its own; pytest's
``pythonpath = ["."]`` puts the repository first, so ``tests`` is always this one.)"""
