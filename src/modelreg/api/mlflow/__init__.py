"""The MLflow door: MLflow's REST protocol served from modelreg's service layer.

``MLFLOW_TRACKING_URI=http://modelreg-host`` is all an MLflow client needs. Routes follow
``../shared/MLFLOW-PROTOCOL.md``; errors use MLflow's ``{"error_code", "message"}`` body.
"""
