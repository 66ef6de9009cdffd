"""Monitoring: the dashboard, the alarms and the notification topic (alarms and finished runs)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.settings import EnvironmentSettings

METRICS_NAMESPACE = "boxloop"
LOOP_SERVICE = "boxloop-loop"
"""Powertools ``service`` dimension of the metrics the loop Lambdas emit."""

BUDGET_ALARM_PERCENT = 90.0


def loop_metric(name: str, statistic: str = "Maximum") -> cw.Metric:
    """A custom metric the loop Lambdas emit (Powertools Metrics, namespace ``boxloop``)."""
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": LOOP_SERVICE},
        statistic=statistic,
        period=Duration.minutes(5),
    )


def alarms_may_use_the_key(stack: Stack) -> iam.PolicyStatement:
    """Key-policy statement: CloudWatch may encrypt alarm notifications, only for this account's alarms here.

    ``aws:SourceAccount`` and ``aws:SourceArn`` keep another account's alarms (the confused deputy) off the key.
    """
    return iam.PolicyStatement(
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch", resource="alarm", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
                )
            },
        },
    )


class Monitoring(Construct):
    """An encrypted SNS topic (alarm e-mail subscribed), then ``watch`` adds the dashboard and alarms."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="boxloop notifications topic")
        key.add_to_resource_policy(alarms_may_use_the_key(Stack.of(self)))
        self.topic = sns.Topic(self, "Notifications", master_key=key, enforce_ssl=True, display_name="boxloop")
        self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

    def watch(
        self,
        *,
        state_machine: sfn.StateMachine,
        queues: dict[str, sqs.IQueue],
        dead_letter_queues: dict[str, sqs.IQueue],
    ) -> None:
        """Dashboard widgets and alarms for the state machine, the queues and the loop's custom metrics."""
        action = cw_actions.SnsAction(self.topic)
        alarms: list[cw.Alarm] = []
        for name, dlq in dead_letter_queues.items():
            alarms.append(
                dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)).create_alarm(
                    self,
                    f"{name}DeadLettersAlarm",
                    alarm_description=f"Messages in the {name} dead-letter queue",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        alarms.append(
            state_machine.metric_failed(period=Duration.minutes(5)).create_alarm(
                self,
                "ExecutionFailedAlarm",
                alarm_description="A labelling run failed (see runs/<run>/failures/); it can be resumed",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        alarms.append(
            loop_metric("HumanBudgetUsedPercent").create_alarm(
                self,
                "HumanBudgetAlarm",
                alarm_description=f"A run has spent at least {BUDGET_ALARM_PERCENT:.0f}% of its human budget",
                threshold=BUDGET_ALARM_PERCENT,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        for alarm in alarms:
            alarm.add_alarm_action(action)

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"boxloop-{self._settings.name}")
        dashboard.add_widgets(
            cw.GraphWidget(title="Auto-labelled share per iteration", left=[loop_metric("AutoLabelledShare")]),
            cw.GraphWidget(
                title="Human hours used vs budget",
                left=[loop_metric("HumanHoursUsed"), loop_metric("HumanHoursBudget")],
            ),
            cw.GraphWidget(
                title="Threshold and lower bound per iteration",
                left=[loop_metric("Threshold"), loop_metric("LowerBound"), loop_metric("TargetMiou")],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue depths",
                left=[
                    queue.metric_approximate_number_of_messages_visible(label=name) for name, queue in queues.items()
                ],
            ),
            cw.GraphWidget(
                title="Dead letters",
                left=[
                    dlq.metric_approximate_number_of_messages_visible(label=name)
                    for name, dlq in dead_letter_queues.items()
                ],
            ),
            cw.GraphWidget(
                title="Runs",
                left=[
                    state_machine.metric_started(label="started"),
                    state_machine.metric_succeeded(label="succeeded"),
                    state_machine.metric_failed(label="failed"),
                ],
            ),
        )
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24))
