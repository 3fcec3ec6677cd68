"""``modelreg serve``: a scoring server that follows a stage or alias (docs/serving.md).

Needs the ``serve`` extra (Starlette, uvicorn, pandas, numpy, prometheus-client).
"""
