"""The use-cases, once for every door: a transaction, the service call, the JSON shape.

The REST routes (``modelreg.api.routes``) and the embedded backend (``modelreg.local``) both
call these functions, so the two cannot drift: each opens its session through ``Handles``
(the server's ``api.deps.Registry``, or ``LocalBackend``), calls the service functions, and
answers the wire dict the REST API sends. The typed result a client returns is built from that
dict by ``modelreg.types`` (``from_dict``), in that one place for both backends; the routes
answer the dict as it is, which keeps the hot reads as fast as before.

An outcome that is an error (a refused promotion) is raised here, after its transaction
committed, through the one outcome table (``modelreg.errors.OUTCOMES``).
"""

from modelreg.services.usecases._handles import Handles, Page

__all__ = ["Handles", "Page"]
