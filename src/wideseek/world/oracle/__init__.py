"""The oracle policy of the offline world: an Engine that plays every agent well.

`OracleEngine` (engine.py) answers each agent's turn from its conversation; the policies
(policies.py) are written with the step routines of steps.py, look entities up (lookup.py),
list a question's rows (members.py), plan deep questions hop by hop (hops.py) and talk to each
other in the fixed phrasings of text.py. Pages are read by `page_facts`.
`run.run_oracle` plays a whole suite through the runtime and scores it.
"""

from wideseek.world.oracle.engine import OracleEngine
from wideseek.world.oracle.policies import OracleError

__all__ = ["OracleEngine", "OracleError"]
