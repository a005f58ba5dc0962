"""The library every Cosma function imports.

Importing this package is cheap on purpose: submodules pull in their own
dependencies, and nothing is connected or initialised at import time.
"""
