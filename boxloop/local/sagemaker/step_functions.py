"""The ``sagemaker`` service for moto's Step Functions interpreter, which has none.

``arn:aws:states:::sagemaker:<action>`` calls the action on moto's SageMaker (request-response);
``createTrainingJob.sync`` and ``createTransformJob.sync`` then poll ``Describe*`` until the job ends: a
``Completed`` job's description is the state's result, any other end fails the state with
``States.TaskFailed`` and the description as its cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

from boxloop.local.process_environment import PROCESS_ENVIRONMENT

ServiceFactory = Callable[[str], Any]
"""moto's ``state_task_factory.state_task_service_for``: a service name to its state-task service."""

_SYNC_DESCRIBE = {
    "create_training_job": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
}
_RUNNING_STATUSES = frozenset({"InProgress", "Stopping"})


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` for moto's interpreter."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _validate_service_integration_is_supported(self) -> None:
        """Accept any SageMaker action: the request goes to moto's SageMaker, which validates it."""

    @staticmethod
    def _client(resource_runtime_part: Any, state_credentials: Any) -> Any:
        with PROCESS_ENVIRONMENT.steady():  # creating a client iterates os.environ, which an invocation may restore
            return boto_client_for(
                service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
            )

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        action = getattr(self._client(resource_runtime_part, state_credentials), self._get_boto_service_action())
        response = action(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(json.loads(json.dumps(response, default=str)))

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Callable[[], Any]:
        action = self._get_boto_service_action()
        if action not in _SYNC_DESCRIBE:
            return super()._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        describe_action, name_key, status_key = _SYNC_DESCRIBE[action]
        env.stack.pop()
        describe = getattr(self._client(resource_runtime_part, state_credentials), describe_action)
        job_name = normalised_parameters[name_key]

        def resolver() -> dict[str, Any] | None:
            description = describe(**{name_key: job_name})
            description.pop("ResponseMetadata", None)
            description = json.loads(json.dumps(description, default=str))
            if description[status_key] in _RUNNING_STATUSES:
                return None
            if description[status_key] == "Completed":
                return description
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=json.dumps(description),
                        )
                    ),
                )
            )

        return resolver


def with_sagemaker_service(service_for: ServiceFactory) -> ServiceFactory:
    """``service_for`` answering ``"sagemaker"`` with ``StateTaskServiceSageMaker`` (other services unchanged)."""

    def sagemaker_or_original(service_name: str) -> Any:
        return StateTaskServiceSageMaker() if service_name == "sagemaker" else service_for(service_name)

    return sagemaker_or_original
