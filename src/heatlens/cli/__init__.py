"""Hydra entry points (train, explain, compare) and the checks that run before any work; the top of the stack.
May import every heatlens package; nothing imports it. The configs' resolvers are registered once, here.
"""

from heatlens.paths import register_resolvers

register_resolvers()
