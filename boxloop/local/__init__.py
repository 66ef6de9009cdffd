"""The local run: moto as the embedded AWS, the hooks that make it execute our code, and the simulated workforce.

- ``aws``: ``LocalAws``, a threaded moto server on a loopback port with the hooks installed.
- ``lambda_runtime``: Lambda invocations call the function's ``Handler`` in this process.
- ``sagemaker_runtime``: training / transform jobs run ``sagemaker_jobs`` with the container contract.
- ``process_environment``: per-invocation environment variables applied to the shared process env.
- ``resources``: the stack's resources, created in moto from the synthesized CDK template.
- ``human_workforce``: the simulated workforce standing in for the A2I consumer Lambda.
- ``snapshot``: the saved bucket and tables that let ``--resume`` continue a run.
- ``outputs``: the output folder (manifest versions, exports, report).
- ``progress``: the terminal display of a running loop.
- ``run``: one local run start to end (``run_locally``, ``resume_locally``).
- ``commands``: ``boxloop demo`` and ``boxloop run``.
"""
