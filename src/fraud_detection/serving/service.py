"""The real-time service: `bentoml serve fraud_detection.serving.service:FraudService` from the project root.

It loads, at start, the models of the A/B variants (registry aliases, `serve.ab.variants`) through BentoML's model
store (imported from `models:/fraud-detector@<alias>` when missing), the Feast online store of the catalog, and
the prediction log; each request goes through `FraudDetector`. The project environment (`conf/<env>`) comes from
`FRAUD_DETECTION_ENV` (default: base + local).
"""

from __future__ import annotations

import os
from http import HTTPStatus

import bentoml
from bentoml.exceptions import BentoMLException

from fraud_detection.ingestion.schema import Limits
from fraud_detection.offline import disable_telemetry
from fraud_detection.serving.schemas import InvalidTransaction, Prediction, Transaction, check_limits

disable_telemetry()


class BadRequest(BentoMLException):
    error_code = HTTPStatus.BAD_REQUEST


@bentoml.service(name="fraud_detection", workers=1, traffic={"timeout": 10}, http={"host": "127.0.0.1"})
class FraudService:
    def __init__(self) -> None:
        from fraud_detection.project import project_context
        from fraud_detection.serving.decision import FallbackRules, Thresholds
        from fraud_detection.serving.detector import FraudDetector, StoreFeatures
        from fraud_detection.serving.models import served_model
        from fraud_detection.serving.prediction_log import PredictionLog
        from fraud_detection.serving.routing import ABRouter

        context = project_context(os.environ.get("FRAUD_DETECTION_ENV"))
        params, serve = context.params, context.params["serve"]
        registry = context.catalog.load("model_registry").open(params["register"]["model_name"])
        router = ABRouter.from_params(serve["ab"])
        models = {alias: served_model(registry, alias) for alias in router.variants}
        features = StoreFeatures(context.catalog.load("feature_store"), params["training_set"]["feature_service"])
        self.limits = Limits.from_params(params["ingest"])
        self.detector = FraudDetector(
            models, features, router, Thresholds.from_params(serve["thresholds"]),
            FallbackRules.from_params(serve["fallback"]),
            PredictionLog(context.catalog.load("prediction_log"), capacity=serve["log_queue"]),
        )  # fmt: skip

    @bentoml.api(route="/predict", input_spec=Transaction, output_spec=Prediction)
    async def predict(self, **fields) -> Prediction:
        transaction = Transaction.model_construct(**fields)
        try:
            check_limits(transaction, self.limits)
        except InvalidTransaction as error:
            raise BadRequest(str(error)) from error
        return self.detector.predict(transaction)

    def __is_ready__(self) -> bool:
        """Ready when the models are loaded (they are, once constructed) and the online store answers."""
        from fraud_detection.feature_store import OnlineStoreUnavailable

        try:
            self.detector.features.state(0, 0)
        except OnlineStoreUnavailable:
            return False
        return True

    @bentoml.on_shutdown
    def close_log(self) -> None:
        self.detector.log.close()
