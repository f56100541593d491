from leadboxer_pipedrive.operators.activities import (
    LeadBoxerExtractOperator,
    PipedriveActivityLoadOperator,
    TransformActivitiesOperator,
    ValidateEventsOperator,
)

__all__ = ["LeadBoxerExtractOperator", "PipedriveActivityLoadOperator", "TransformActivitiesOperator",
           "ValidateEventsOperator"]
