"""Question sets, one module per chapter: ``chNN.py`` with a ``QUESTIONS`` list.

See :mod:`tlcourse.grading.questions` for how to declare a question and
``tlcourse/grading/sets/ch00.py`` for a complete example.
"""
