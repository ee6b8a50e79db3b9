"""tlcourse: the companion package of a hands-on course on transfer learning and fine-tuning.

Importing the package does no work: no seeding, no downloads, no folders created.
Import what you need from its topic modules, e.g. ``from tlcourse.engine import fit``.
"""

__version__ = "0.1.0"
