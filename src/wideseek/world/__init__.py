"""The bundled offline world: real facts -> web-like pages -> corpus + wide/deep task suites.

Public surface: `build_world` (rebuild from the pinned fact packages, extra `world`),
`load_world` (a built directory, or the shipped default unpacked to the user cache), `World`,
`Manifest`, `WorldError`.
"""

from wideseek.world.build import Manifest, WorldError, build_world
from wideseek.world.store import World, load_world, pack_world

__all__ = ["Manifest", "World", "WorldError", "build_world", "load_world", "pack_world"]
