"""The model families of the zoo, one file each; :mod:`tlcourse.zoo` is their registry."""
