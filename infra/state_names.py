"""The labelling state machine's state names, spelled once.

The CDK definition (``infra/labelling_definition.py``) names its states with these, and the local run reads
them back from execution histories (``boxloop/local``). Plain strings: importing this module needs no CDK.
"""

from __future__ import annotations

IS_RESUMED_RUN = "IsResumedRun"
RESUME_AFTER_LAST_PUBLISHED_VERSION = "ResumeAfterLastPublishedVersion"
RECALL_PROGRESS_OF_LAST_PUBLISHED_VERSION = "RecallProgressOfLastPublishedVersion"
"""PublishManifestVersion again for the last published iteration (idempotent): a resumed run's ``$.progress``."""
REGISTER_POOL = "RegisterPool"
SELECT_WAVE_FOR_PEOPLE = "SelectWaveForPeople"
"""The next wave people label unaided: the initial sample's next images, or images left once learning stopped."""
IS_THERE_A_WAVE_FOR_PEOPLE = "IsThereAWaveForPeople"
LABEL_WAVE_BY_PEOPLE = "LabelWaveByPeople"
CHECK_HUMAN_LABEL_QUALITY = "CheckHumanLabelQuality"
ADD_NEW_ARRIVALS_TO_POOL = "AddNewArrivalsToPool"
IS_NEXT_ITERATION_FOR_PEOPLE_ONLY = "IsNextIterationForPeopleOnly"
SPLIT_TRAIN_VALIDATION = "SplitTrainValidation"
CHOOSE_IMAGES_TO_INFER = "ChooseImagesToInfer"
"""A Distributed Map over the pool shards: the unlabelled and validation images the pool inference reads."""
CHOOSE_SHARD_IMAGES_TO_INFER = "ChooseShardImagesToInfer"
"""The one state of ``ChooseImagesToInfer``'s item processor."""
HAS_PREVIOUS_MODEL = "HasPreviousModel"
TRAIN_DETECTOR = "TrainDetector"
TRAIN_DETECTOR_FROM_PREVIOUS_MODEL = "TrainDetectorFromPreviousModel"
CREATE_MODEL = "CreateModel"
RUN_POOL_INFERENCE = "RunPoolInference"
COMPUTE_THRESHOLD = "ComputeThreshold"
ROUTE_IMAGES = "RouteImages"
ROUTE_SHARD = "RouteShard"
"""The one state of ``RouteImages``' item processor."""
SELECT_IMAGES_FOR_HUMANS = "SelectImagesForHumans"
ARE_THERE_IMAGES_FOR_HUMANS = "AreThereImagesForHumans"
LABEL_UNCERTAIN_IMAGES_BY_HUMANS = "LabelUncertainImagesByHumans"
PUBLISH_MANIFEST_VERSION = "PublishManifestVersion"
IS_LABELLING_DONE = "IsLabellingDone"
FINALIZE = "Finalize"
RUN_SUCCEEDED = "RunSucceeded"
RECORD_FAILURE = "RecordFailure"
RUN_FAILED = "RunFailed"

HUMAN_STATES = frozenset({LABEL_WAVE_BY_PEOPLE, LABEL_UNCERTAIN_IMAGES_BY_HUMANS})
"""The states that wait for people (``sqs:sendMessage.waitForTaskToken`` on the human-review queue)."""
TRAINING_STATES = frozenset({TRAIN_DETECTOR, TRAIN_DETECTOR_FROM_PREVIOUS_MODEL})
"""The states that run a SageMaker training job."""
