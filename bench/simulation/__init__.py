"""The labelling loop's decisions run in one process, for benchmarks that compare labelling policies.

The state machine's steps (initial sample, split, training, pool inference, threshold, routing, human
selection, human answers with QC) are made here by the same core functions the Lambdas call
(``boxloop.initial_sample``, ``validation_split``, ``threshold_step``, ``selection``, ``human_tasks``,
``qc``) and the same ``sagemaker_jobs`` training script and predictor; only the orchestration (Step
Functions, S3, DynamoDB, A2I) is left out, so a policy runs in minutes instead of the local run's embedded AWS.
"""
