"""``python -m tests.tiny_models OUT_DIR [FAMILY ...]``: the project's long-standing command for
the tiny checkpoints. The kit itself is ``devtools.tiny_models``, shared by tests and benchmarks.
"""

from devtools.tiny_models.__main__ import main

if __name__ == "__main__":
    main()
