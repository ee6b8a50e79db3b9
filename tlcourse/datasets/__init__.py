"""Course datasets, one module per modality: ``images``, ``speech``, ``text``.

Import the module you need (``from tlcourse.datasets import images``); nothing is built or
downloaded at import. ``catalog`` lists them all (``python -m tlcourse data list``).
"""
