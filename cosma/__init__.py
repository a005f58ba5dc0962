"""Local tooling: the embedded database, the all-in-one server and the `cosma` command.

Nothing here is deployed; the functions import only `shared`.
"""
