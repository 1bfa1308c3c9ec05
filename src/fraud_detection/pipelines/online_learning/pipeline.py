from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.online_learning.nodes import compare, daily_average_precision, load_champion, replay


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                load_champion,
                ["model_registry", "promotion", "params:register.model_name"],
                "online_champion",
                name="champion",
            ),
            node(
                replay,
                [
                    "transactions",
                    "online_champion",
                    "params:simulate",
                    "params:online",
                    "params:features.label_delay_days",
                    "params:feedback",
                    "params:ingest.source",
                ],
                "online_replay",
                name="replay",
            ),
            node(
                compare,
                ["online_replay", "online_champion", "params:online", "params:evaluate.top_k"],
                "online_learning_report",
                name="compare",
            ),
            node(daily_average_precision, "online_learning_report", "online_learning_plots", name="plot"),
        ]
    )
