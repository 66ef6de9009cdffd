"""``LocalAws``: the embedded AWS of a local run (a threaded moto server with our hooks installed).

The hooks (in-process Lambda, local SageMaker jobs and ``.sync``, DynamoDB transactions that snapshot items
rather than copy tables) patch moto's classes, so they
must live in the process that serves the requests: this one. Entering the context starts a
moto server on a free loopback port, enables Step Functions execution, and points this process
at it (``AWS_ENDPOINT_URL``, ``MOTO_PORT`` for the interpreter's own clients, dummy credentials,
region); leaving it stops running jobs and the server and restores the environment.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from boxloop.local import dynamodb_transactions, lambda_runtime
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.sagemaker.job_code import SageMakerJobCode
from boxloop.local.sagemaker.local_sagemaker import LocalSageMaker

DEFAULT_REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
_ENVIRONMENT_NAMES = (
    "AWS_ENDPOINT_URL",
    "MOTO_PORT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


_PROCESS_PORT: list[int] = []
"""The port the first LocalAws of this process chose: later ones reuse it, because handler modules
cache boto3 clients (created with ``AWS_ENDPOINT_URL``) for the life of the process."""


def free_loopback_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class LocalAws:
    """A moto server on ``127.0.0.1:<port>`` with the local hooks; use as a context manager.

    ``job_code`` selects the code SageMaker jobs run (defaults: ``sagemaker_jobs``); ``sagemaker`` is the
    ``LocalSageMaker`` that runs them, installed while the server runs;
    ``lambda_environment`` is the Lambda runtime's own settings (e.g. Powertools' log level): given
    to every invocation (``lambda_runtime.install``) and set process-wide while the server runs,
    because handler code (Powertools' metrics flush, module-level objects) may read them outside
    an invocation.
    Only one ``LocalAws`` may be open at a time in a process: moto's state and the hooks are
    process-wide. Each one starts empty (moto's state is reset on start).
    """

    def __init__(
        self,
        region: str = DEFAULT_REGION,
        port: int | None = None,
        job_code: SageMakerJobCode | None = None,
        lambda_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.region = region
        if port is None:
            if not _PROCESS_PORT:
                _PROCESS_PORT.append(free_loopback_port())
            port = _PROCESS_PORT[0]
        self.port = port
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self.sagemaker = LocalSageMaker(job_code)
        self._lambda_environment = dict(lambda_environment or {})
        self._server: ThreadedMotoServer | None = None
        self._saved_environment: dict[str, str | None] = {}

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Install the hooks, start the server, enable execution, and point this process at it."""
        lambda_runtime.install(self._lambda_environment)
        self.sagemaker.install()
        dynamodb_transactions.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)  # failures are in the execution's history
        names = (*_ENVIRONMENT_NAMES, *self._lambda_environment)
        self._saved_environment = {name: os.environ.get(name) for name in names}
        os.environ.update(self._lambda_environment)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "MOTO_PORT": str(self.port),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        self._server.start()
        self.configure()
        self.reset()

    def configure(self, execute_state_machines: bool = True) -> None:
        """Ask moto to execute state machines (kept across ``reset``); the setting is process-wide, so ``stop``
        turns it back off (moto's default) for whatever runs in this process next."""
        response = requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": execute_state_machines}},
            timeout=10,
        )
        response.raise_for_status()

    def reset(self) -> None:
        """Forget every resource (moto's reset); the server, hooks and configuration stay."""
        self.sagemaker.stop_running_jobs()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=30).raise_for_status()

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on this embedded AWS (created with the process environment steady)."""
        with PROCESS_ENVIRONMENT.steady():
            return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def stop(self) -> None:
        """Stop running jobs and the server, uninstall the SageMaker hooks; restore the environment this process had."""
        self.sagemaker.uninstall()
        dynamodb_transactions.uninstall()
        if self._server is not None:
            try:
                self.configure(execute_state_machines=False)
            finally:
                self._server.stop()
            self._server = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
