"""The local run: moto as the embedded AWS, the hooks that make it execute our code, and the simulated workforce.

- ``aws``: ``LocalAws``, a threaded moto server on a loopback port with the hooks installed.
- ``lambda_runtime``: Lambda invocations call the function's ``Handler`` in this process.
- ``sagemaker``: ``LocalSageMaker``, training / transform jobs run ``sagemaker_jobs`` with the container contract,
  and Step Functions' ``sagemaker:*.sync``.
- ``process_environment``: per-invocation environment variables applied to the shared process env.
- ``resources``: the stack's resources, created in moto from the synthesized CDK template.
- ``human_workforce``: the simulated workforce standing in for the A2I consumer Lambda.
- ``snapshot``: the saved bucket and tables that let ``--resume`` continue a run.
- ``outputs``: the output folder (manifest versions, exports, report).
- ``run_config``: the labelling configuration a run uses (over the stack's defaults, then the run's snapshot).
- ``progress``: the terminal display of a running loop.
- ``watcher``: ``RunWatcher``, following one execution (progress, versions copied out, state saved).
- ``run``: one local run start to end (``run_locally``, ``resume_locally``).
- ``run_records``: what a run is started with (``run.json``, ``RunSpec``) and gives back (``RunResult``).
- ``run_start``: how its execution starts (images, then the configuration, uploaded; or a resumed execution).
- ``commands``: ``boxloop demo`` and ``boxloop run``.
"""
