"""SageMaker training and batch-transform jobs created in moto run for real, on this machine.

moto records SageMaker jobs as metadata only (``Completed`` at once, nothing run) and its Step Functions
interpreter rejects ``sagemaker:*.sync``. ``LocalSageMaker`` (``local_sagemaker``) patches both while it is
installed (moto 5.2.5 internals; no public plugin API exists):

- ``training``: ``CreateTrainingJob`` runs the training script as a subprocess with SageMaker's container
  contract, uploads the model, enforces ``MaxRuntimeInSeconds`` and reads ``MetricDefinitions``;
- ``transform``: ``CreateTransformJob`` runs the inference module's handler functions over the input
  objects in this process and writes ``<relative key>.out`` objects;
- ``step_functions``: the interpreter's ``sagemaker`` service, any action request-response and
  ``createTrainingJob.sync`` / ``createTransformJob.sync`` polling ``Describe*`` until the job ends.

What code runs is ``job_code.SageMakerJobCode`` (``sagemaker_jobs/train.py`` and ``sagemaker_jobs.inference``
unless the caller gives others); the jobs' image URIs are recorded but not used.
"""
