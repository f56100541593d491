from leadboxer_pipedrive.operators.activities import (
    LeadBoxerExtractOperator,
    PipedriveActivityLoadOperator,
    TransformActivitiesOperator,
    ValidateEventsOperator,
)
from leadboxer_pipedrive.operators.leads import (
    PipedriveLeadLoadOperator,
    TransformLeadsOperator,
    ValidateLeadsOperator,
)

__all__ = ["LeadBoxerExtractOperator", "PipedriveActivityLoadOperator", "PipedriveLeadLoadOperator",
           "TransformActivitiesOperator", "TransformLeadsOperator", "ValidateEventsOperator",
           "ValidateLeadsOperator"]
