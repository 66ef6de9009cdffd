"""The local run: moto as the embedded AWS, the hooks that make it execute our code, and the simulated workforce.

- ``aws``: ``LocalAws``, a threaded moto server on a loopback port with the hooks installed.
- ``lambda_runtime``: Lambda invocations call the function's ``Handler`` in this process.
- ``sagemaker_runtime``: training / transform jobs run ``sagemaker_jobs`` with the container contract.
- ``process_environment``: per-invocation environment variables applied to the shared process env.
- ``resources``: the stack's resources, created in moto from the synthesized CDK template.
- ``human_workforce``: the simulated workforce standing in for the A2I consumer Lambda.
"""
