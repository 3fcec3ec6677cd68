"""The service layer: every use-case of the registry, one function each.

Services take a SQLAlchemy ``Session`` (and a ``BlobStore`` where bytes are involved), never
commit, and raise only ``modelreg.errors`` exceptions. The caller owns the transaction.
"""
